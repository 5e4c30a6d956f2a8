-- Who wrote a review, and the claim it rates: a claim's token may post one review of the prompt
-- it was given, also for a while after the claim ended.
ALTER TABLE prompt_reviews ADD COLUMN author_name TEXT;
ALTER TABLE prompt_reviews ADD COLUMN session_id TEXT;
CREATE UNIQUE INDEX prompt_reviews_session ON prompt_reviews (session_id) WHERE session_id IS NOT NULL;
