//! The catalogue itself: sets, names and the reference's schemas (their behaviour against a
//! real server is tested in `loop-server/tests/mcp.rs`).

use super::*;

const REFERENCE: [&str; 9] = [
    "loop_get_next_task",
    "loop_complete_task",
    "loop_create_issue",
    "loop_update_issue",
    "loop_list_issues",
    "loop_get_issue",
    "loop_ingest_signal",
    "loop_create_comment",
    "loop_get_dashboard",
];

fn names(set: ToolSet) -> Vec<&'static str> {
    list(set).iter().map(|t| t.name).collect()
}

#[test]
fn sets_nest_and_standard_has_the_reference_nine() {
    let (core, standard, all) = (names(ToolSet::Core), names(ToolSet::Standard), names(ToolSet::All));
    assert!(core.len() < standard.len() && standard.len() < all.len());
    assert!(core.iter().all(|n| standard.contains(n)) && standard.iter().all(|n| all.contains(n)));
    for n in REFERENCE {
        assert!(standard.contains(&n), "{n} is not in the standard set");
    }
    for n in ["loop_get_next_task", "loop_heartbeat", "loop_complete_task", "loop_release_task", "loop_fail_task"] {
        assert!(core.contains(&n), "{n} is not in the core set");
    }
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "tool names are unique");
    assert!(all.iter().all(|n| n.starts_with("loop_")));
    assert_eq!("core".parse::<ToolSet>(), Ok(ToolSet::Core));
    assert!("most".parse::<ToolSet>().unwrap_err().contains("core, standard or all"));
}

fn schema(name: &str) -> Value {
    list(ToolSet::All).into_iter().find(|t| t.name == name).unwrap().input_schema
}

/// The reference's input schemas (contract §8.2): names, types, enums, bounds, required.
#[test]
fn reference_input_schemas_are_kept() {
    let s = schema("loop_create_issue");
    assert_eq!(s["required"], json!(["title"]));
    assert_eq!(
        (s["properties"]["title"]["minLength"].clone(), s["properties"]["title"]["maxLength"].clone()),
        (json!(1), json!(500))
    );
    assert_eq!(s["properties"]["type"]["enum"], json!(TYPES));
    assert_eq!(
        (s["properties"]["priority"]["minimum"].clone(), s["properties"]["priority"]["maximum"].clone()),
        (json!(0), json!(4))
    );
    let s = schema("loop_list_issues");
    assert_eq!(s["properties"]["status"]["enum"], json!(STATUSES));
    assert_eq!(
        (s["properties"]["limit"]["minimum"].clone(), s["properties"]["limit"]["maximum"].clone()),
        (json!(1), json!(100))
    );
    assert_eq!(s["required"], json!([]));
    assert_eq!(schema("loop_complete_task")["required"], json!(["issueId", "outcome"]));
    assert_eq!(schema("loop_ingest_signal")["required"], json!(["source", "type", "payload"]));
    assert_eq!(
        schema("loop_ingest_signal")["properties"]["severity"]["enum"],
        json!(["critical", "high", "medium", "low"])
    );
    assert_eq!(schema("loop_create_comment")["properties"]["body"]["minLength"], json!(1));
    assert_eq!(schema("loop_get_dashboard")["properties"], json!({}));
    assert_eq!(schema("loop_get_next_task")["properties"]["projectId"]["type"], "string");
}

#[test]
fn read_only_tools_say_so() {
    for t in list(ToolSet::All) {
        let reads = t.name.starts_with("loop_get_") || t.name.starts_with("loop_list_") || t.name == "loop_explain";
        // Getting the next task claims it: not a read.
        assert_eq!(t.read_only, reads && t.name != "loop_get_next_task", "{}", t.name);
    }
}
