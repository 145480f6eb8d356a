"""The OpenAI-compatible client that `generate` (the teacher) and the evaluation judge share: one client config
(`config.ClientConfig`, which the recipe's `generate:` and `evaluate.judge:` sections both extend), the transport
(`transport`: retries by `retry`'s policy, client-side rate limits from `ratelimit`, a per-request timeout), the
persistent response cache (`cache`), pricing and token usage (`pricing`, `report`) and cache-first asking (`chat`).

It imports nothing from the generation engine or the evaluation code, so both can use it.
"""
