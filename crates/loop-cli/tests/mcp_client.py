"""An MCP host that is not ours: the Python `mcp` SDK from PyPI, driving Loop's MCP server
over stdio (`loop mcp`) and over Streamable HTTP (`/mcp` on `loop serve`).

Usage: mcp_client.py stdio|http URL KEY LOOP_BINARY
Run by `mcp_client.rs`, which starts the server and makes the virtual environment. Each mode
seeds its own issues through the REST API, then lists and calls every tool it is offered,
lists and gets prompts, lists and reads resources, and works a claim end to end.
"""

import asyncio
import json
import sys
import urllib.error
import urllib.request

import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

MODE, URL, KEY, LOOP = sys.argv[1:5]

# The reference's nine tools and their input schemas (contract §8.2): property names,
# required names, and the bounds, enums and types an agent prompt relies on.
STATUSES = ["triage", "backlog", "todo", "in_progress", "done", "canceled"]
TYPES = ["signal", "hypothesis", "plan", "task", "monitor"]
REFERENCE = {
    "loop_get_next_task": ({"projectId"}, []),
    "loop_complete_task": ({"issueId", "outcome"}, ["issueId", "outcome"]),
    "loop_create_issue": ({"title", "type", "priority", "projectId", "description", "parentId"}, ["title"]),
    "loop_update_issue": ({"issueId", "status", "priority", "type", "title", "description"}, ["issueId"]),
    "loop_list_issues": ({"status", "type", "projectId", "limit", "offset"}, []),
    "loop_get_issue": ({"issueId"}, ["issueId"]),
    "loop_ingest_signal": ({"source", "type", "severity", "payload", "projectId"}, ["source", "type", "payload"]),
    "loop_create_comment": ({"issueId", "body"}, ["issueId", "body"]),
    "loop_get_dashboard": (set(), []),
}
OURS = [
    "loop_heartbeat", "loop_release_task", "loop_fail_task", "loop_submit_review", "loop_explain",
    "loop_create_relation", "loop_attach_commit", "loop_attach_pr",
]


def rest(method, path, body=None, key=KEY):
    """One REST call; returns (status, JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def issue(title, **fields):
    status, body = rest("POST", "/api/issues", {"title": title, "type": "task", "status": "todo", **fields})
    assert status == 201, (status, body)
    return body["data"]


def check(condition, *what):
    if not condition:
        raise AssertionError(" ".join(str(w) for w in what))


def structured(result):
    check(not result.is_error, "tool error:", result.content[0].text if result.content else result)
    check(result.structured_content is not None, "no structuredContent")
    # The text is the same data, for hosts that show only text.
    check(json.loads(result.content[0].text) == result.structured_content, "text and structuredContent differ")
    return result.structured_content


async def exercise(session, tag):
    init = await session.initialize()
    check(init.server_info.name == "loop-mcp", init.server_info)
    check("loop_get_next_task" in (init.instructions or ""), "instructions say how to work")

    tools = {t.name: t for t in (await session.list_tools()).tools}
    for name, (properties, required) in REFERENCE.items():
        check(name in tools, "missing reference tool", name)
        schema = tools[name].input_schema
        check(set(schema.get("properties", {})) == properties, name, "properties", schema)
        check(sorted(schema.get("required", [])) == sorted(required), name, "required", schema)
    for name in OURS:
        check(name in tools, "missing tool", name)
        check(tools[name].description and len(tools[name].description) > 30, name, "needs a description an agent can act on")
    create = tools["loop_create_issue"].input_schema["properties"]
    check(create["title"]["minLength"] == 1 and create["title"]["maxLength"] == 500, create["title"])
    check(create["type"]["enum"] == TYPES and create["priority"]["maximum"] == 4, create)
    listing = tools["loop_list_issues"].input_schema["properties"]
    check(listing["status"]["enum"] == STATUSES and listing["limit"]["maximum"] == 100, listing)
    check(tools["loop_get_issue"].annotations.read_only_hint is True, "loop_get_issue is read-only")
    check(tools["loop_get_next_task"].annotations.read_only_hint is False, "claiming is not a read")

    # Seed: `first` blocks `second`; both are ready except for that block.
    first = issue(f"{tag} first", priority=1)
    second = issue(f"{tag} second", priority=2)
    status, _ = rest("POST", f"/api/issues/{first['id']}/relations", {"type": "blocks", "relatedIssueId": second["id"]})
    check(status == 201, "relation", status)

    # Prompts: each active template, rendered for an issue.
    prompts = {p.name: p for p in (await session.list_prompts()).prompts}
    check("task-execution" in prompts, "prompts", list(prompts))
    check(prompts["task-execution"].arguments[0].name == "issue", prompts["task-execution"])
    rendered = await session.get_prompt("task-execution", {"issue": str(first["number"])})
    check(f"{tag} first" in rendered.messages[0].content.text, "rendered prompt names the issue")

    # Resources: issues by number.
    resources = (await session.list_resources()).resources
    uris = {str(r.uri) for r in resources}
    check(f"loop://issues/{first['number']}" in uris, "resources", uris)
    read = await session.read_resource(f"loop://issues/{first['number']}")
    check(json.loads(read.contents[0].text)["id"] == first["id"], "read resource")

    # The work cycle: claim, heartbeat, note, record, review, complete (which unblocks `second`).
    claim = structured(await session.call_tool("loop_get_next_task", {}))
    check(claim["issue"]["id"] == first["id"], "claimed", claim["issue"])
    check(set(claim["issue"]) == {"id", "number", "title", "type", "priority", "status"}, claim["issue"])
    check(f"{tag} first" in claim["prompt"] and claim["meta"]["versionId"], "prompt and meta")
    check(claim["token"].startswith("loopt_") and claim["session"]["leaseExpiresAt"], claim)
    beat = structured(await session.call_tool("loop_heartbeat", {"sessionId": claim["session"]["id"]}))
    check(beat["id"] == claim["session"]["id"], beat)
    comment = structured(await session.call_tool("loop_create_comment", {"issueId": first["id"], "body": "working on it"}))
    check(set(comment) == {"id", "body", "authorName", "createdAt"} and comment["authorName"] == "agent", comment)
    structured(await session.call_tool("loop_attach_commit", {"issueId": first["id"], "sha": "0a1b2c3", "message": "fix"}))
    pr = structured(await session.call_tool("loop_attach_pr", {"issueId": first["id"], "number": 12, "url": "https://example.test/pr/12"}))
    check(pr["pullRequests"] == [{"number": 12, "url": "https://example.test/pr/12"}], pr)
    review = structured(await session.call_tool(
        "loop_submit_review",
        {"versionId": claim["meta"]["versionId"], "issueId": first["id"], "clarity": 4, "completeness": 4, "relevance": 5},
    ))
    check(review["clarity"] == 4, review)
    done = structured(await session.call_tool("loop_complete_task", {"issueId": first["id"], "outcome": "fixed it"}))
    check(done["issue"]["status"] == "done" and done["comment"]["body"] == "fixed it", done)
    check([i["id"] for i in done["unblockedIssues"]] == [second["id"]], "unblocked", done["unblockedIssues"])
    detail = structured(await session.call_tool("loop_get_issue", {"issueId": first["id"]}))
    check([c["body"] for c in detail["comments"]] == ["working on it", "fixed it"], detail["comments"])
    check(detail["sessions"][0]["id"] == claim["session"]["id"] and detail["relations"], detail)
    check(detail["commits"] == [{"sha": "0a1b2c3", "message": "fix"}], detail["commits"])

    # The dependant: explained, claimed, released, claimed, failed.
    why = structured(await session.call_tool("loop_explain", {"issueId": second["id"]}))
    check(why["blockers"] == [], why)
    claim = structured(await session.call_tool("loop_get_next_task", {}))
    check(claim["issue"]["id"] == second["id"], claim["issue"])
    released = structured(await session.call_tool("loop_release_task", {"sessionId": claim["session"]["id"], "reason": "not now"}))
    check(released["endedAt"], released)
    claim = structured(await session.call_tool("loop_get_next_task", {}))
    failed = structured(await session.call_tool("loop_fail_task", {"sessionId": claim["session"]["id"], "reason": "broke"}))
    check(failed["outcome"] == "failed", failed)

    # The rest of the reference's nine.
    created = structured(await session.call_tool("loop_create_issue", {"title": f"{tag} found", "type": "task"}))
    check(created["status"] == "triage" and created["priority"] == 0, created)
    updated = structured(await session.call_tool("loop_update_issue", {"issueId": created["id"], "status": "backlog"}))
    check(updated["status"] == "backlog", updated)
    relation = structured(await session.call_tool("loop_create_relation", {"issueId": created["id"], "type": "related", "relatedIssueId": second["id"]}))
    check(relation["type"] == "related", relation)
    page = structured(await session.call_tool("loop_list_issues", {"status": "backlog", "limit": 100}))
    check(created["id"] in [i["id"] for i in page["issues"]] and page["hasMore"] is False, page)
    signal = structured(await session.call_tool("loop_ingest_signal", {"source": "posthog", "type": "metric", "payload": {"tag": tag}}))
    check(signal["signal"]["id"] and signal["issue"]["type"] == "signal", signal)
    dashboard = structured(await session.call_tool("loop_get_dashboard", {}))
    check(dashboard["issues"]["total"] >= 4, dashboard)
    if "loop_get_queue" in tools:
        queue = structured(await session.call_tool("loop_get_queue", {"limit": 5}))
        check("queue" in queue, queue)
    if "loop_list_signals" in tools:
        signals = structured(await session.call_tool("loop_list_signals", {}))
        check(signals["total"] >= 1, signals)

    # An error is a tool error with the server's message, not a protocol failure.
    missing = await session.call_tool("loop_get_issue", {"issueId": "99999"})
    check(missing.is_error and missing.content[0].text.startswith("Not found:"), missing)
    bad = await session.call_tool("loop_create_issue", {"title": "x" * 501})
    check(bad.is_error and "title" in bad.content[0].text, bad)
    return len(tools)


async def over_stdio():
    server = StdioServerParameters(command=LOOP, args=["mcp"], env={"LOOP_API_URL": URL, "LOOP_API_KEY": KEY, "HOME": "/nonexistent"})
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            return await exercise(session, "stdio")


async def over_http():
    # No token: refused before any tool runs.
    async with httpx2.AsyncClient() as anonymous:
        response = await anonymous.post(URL + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                        headers={"Accept": "application/json, text/event-stream"})
        check(response.status_code == 401, "/mcp without a token", response.status_code)
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer " + KEY}, timeout=30) as client:
        async with streamable_http_client(URL + "/mcp", http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                return await exercise(session, "http")


count = asyncio.run(over_stdio() if MODE == "stdio" else over_http())
print(f"{MODE}: {count} tools listed and exercised")
