-- wrk script for bench/async/run: every request is an async invocation,
-- POST with a one-byte body to the URL's path (/async/NAME), answered 202
-- once JetStream has stored it. The same script drives the bare net/http
-- baseline, so both sides send the same bytes.
--
-- It defines no response() callback on purpose: with one, wrk parses every
-- answer in Lua, which costs the client (on the same 2 cores as the
-- server) a large share of its CPU. A refused accept shows in wrk's
-- "Non-2xx or 3xx responses" line, which bench/async/run checks.
wrk.method = "POST"
wrk.body = "x"
wrk.headers["Content-Type"] = "text/plain"
