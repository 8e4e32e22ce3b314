import Foundation
import OutpostCore
import OutpostTesting
import Testing

/// Every error the API answers, as a client sees it over the socket: the status, the OpenAI-style
/// body (`type`, `param` naming the field) and the headers a client acts on.
@Suite struct LocalAPIErrorTests {
    /// Each bad number gets a 400 whose `param` names the field, and never reaches the service.
    @Test func badNumbersGet400NamingTheFieldAndNeverReachTheService() async throws {
        let server = try await TestServer.start()
        let numbers: [(field: String, param: String)] = [
            (#""temperature":3.5e38"#, "temperature"),
            (#""temperature":-0.5"#, "temperature"),
            (#""temperature":1e400"#, "temperature"),
            (#""top_p":1e-320"#, "top_p"),
            (#""top_k":-1"#, "top_k"),
            (#""top_k":1e300"#, "top_k"),
            (#""max_tokens":-5"#, "max_tokens"),
            (#""max_tokens":1e300"#, "max_tokens"),
            (#""repeat_penalty":0"#, "repeat_penalty"),
            (#""seed":-1"#, "seed"),
            (#""seed":1e20"#, "seed"),
        ]
        for (field, param) in numbers {
            let r = try await server.exchange(HTTP.post(HTTP.chat("hi", extra: ",\(field)")))
            #expect(r.status == 400, "\(field): \(r.status) \(r.text)")
            #expect(r.errorParam == param, "\(field): \(r.text)")
            #expect(r.errorType == "invalid_request_error", "\(field): \(r.text)")
        }
        let completion = try await server.exchange(HTTP.post("/v1/completions", #"{"prompt":"The sky is","temperature":-1}"#))
        #expect(completion.status == 400 && completion.errorParam == "temperature", "\(completion.text)")
        #expect(server.service.calls == 0)
        // The same request with good numbers does reach it.
        let good = try await server.exchange(HTTP.post(HTTP.chat("hi", extra: #","temperature":0.5,"top_k":5,"seed":7"#)))
        #expect(good.status == 200, "\(good.text)")
        #expect(server.service.calls == 1)
        await server.stop()
    }

    /// An unknown path is 404; a known path asked with another method is 405 naming the method it
    /// answers in `Allow`.
    @Test func unknownPathsGet404AndWrongMethods405() async throws {
        let server = try await TestServer.start()
        let missing = try await server.exchange(HTTP.get("/no/such/path"))
        #expect(missing.status == 404)
        #expect(missing.errorType == "not_found", "\(missing.text)")
        #expect(missing.errorMessage?.contains("no such endpoint") == true, "\(missing.text)")

        let wrong: [(request: String, allow: String)] = [
            (HTTP.get("/v1/chat/completions"), "POST"),
            (HTTP.get("/v1/completions"), "POST"),
            (HTTP.get("/v1/cache/invalidate"), "POST"),
            (HTTP.post("/health", "{}"), "GET"),
            (HTTP.post("/v1/models", "{}"), "GET"),
            ("DELETE /v1/cache/stats HTTP/1.1\r\nHost: outpost\r\n\r\n", "GET"),
            ("PUT /metrics HTTP/1.1\r\nHost: outpost\r\nContent-Length: 0\r\n\r\n", "GET"),
        ]
        for (request, allow) in wrong {
            let r = try await server.exchange(request)
            let line = request.prefix { $0 != "\r" }
            #expect(r.status == 405, "\(line): \(r.status) \(r.text)")
            #expect(r.headers["allow"] == allow, "\(line): \(r.headers)")
            #expect(r.errorType == "method_not_allowed", "\(line): \(r.text)")
        }
        #expect(server.service.calls == 0)
        #expect(try await server.exchange(HTTP.get("/health")).status == 200)
        await server.stop()
    }

    /// A body over 1 MiB is refused with 413 naming the framing, whether announced by
    /// Content-Length or sent chunked, and the connection is closed after the answer.
    @Test func oversizedBodiesGet413AndTheConnectionCloses() async throws {
        let server = try await TestServer.start()
        let limit = 1 << 20
        let announced = try await server.connect()
        try await announced.send("POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nContent-Length: \(limit + 1)\r\n\r\n{\"messages\"")
        let r = try await announced.response()
        #expect(r.status == 413, "\(r.text)")
        #expect(r.errorParam == "Content-Length", "\(r.text)")
        #expect(r.errorType == "request_too_large", "\(r.text)")
        #expect(r.headers["connection"] == "close")
        #expect(await announced.secondsUntilClosed(timeout: 5) != nil, "the connection stayed open")

        // Sent whole, to the admin endpoint: refused just the same.
        let whole = try await server.connect()
        let body = "{\"tag\":\"" + String(repeating: "a", count: limit) + "\"}"
        try? await whole.send(HTTP.post("/v1/cache/invalidate", body))
        let w = try await whole.response()
        #expect(w.status == 413, "\(w.text)")
        #expect(w.errorParam == "Content-Length", "\(w.text)")

        // Chunked: the chunk that takes the body past the limit is refused.
        let chunked = try await server.connect()
        let half = String(repeating: "b", count: limit / 2 + 1)
        let size = String(half.utf8.count, radix: 16)
        try? await chunked.send("POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + "\(size)\r\n\(half)\r\n\(size)\r\n")
        let c = try await chunked.response()
        #expect(c.status == 413, "\(c.text)")
        #expect(c.errorParam == "chunk-size", "\(c.text)")
        #expect(server.service.calls == 0)
        #expect(server.service.record.withLock { $0.invalidationsStarted } == 0)
        await server.stop()
    }

    /// The service's `ServiceError`s become statuses a client can act on: busy and shutting down
    /// 503 with `Retry-After`, too long 400 naming `max_tokens`, a failure 500; any other error 500.
    @Test func serviceErrorsMapToStatuses() async throws {
        let server = try await TestServer.start()
        let cases: [(content: String, status: Int, type: String, retryAfter: String?, param: String?, says: String?)] = [
            ("busy", 503, "server_busy", "7", nil, ScriptedService.busyMessage),
            ("shutting down", 503, "shutting_down", "5", nil, "shutting down"),
            ("too long", 400, "invalid_request_error", nil, "max_tokens", "context"),
            ("fail", 500, "server_error", nil, nil, ScriptedService.failMessage),
            ("crash", 500, "server_error", nil, nil, nil),
        ]
        for c in cases {
            let r = try await server.exchange(HTTP.post(HTTP.chat(c.content)))
            #expect(r.status == c.status, "\(c.content): \(r.status) \(r.text)")
            #expect(r.errorType == c.type, "\(c.content): \(r.text)")
            #expect(r.headers["retry-after"] == c.retryAfter, "\(c.content): \(r.headers)")
            #expect(r.errorParam == c.param, "\(c.content): \(r.text)")
            if let says = c.says { #expect(r.errorMessage?.contains(says) == true, "\(c.content): \(r.text)") }
            #expect(r.headers["content-type"] == "application/json")
        }
        #expect(server.service.calls == cases.count)
        // The connection that got a 500 is not poisoned: the server answers the next request.
        #expect(try await server.exchange(HTTP.post(HTTP.chat("hi"))).status == 200)
        await server.stop()
    }

    /// The admin endpoint refuses a scope that is not exactly one of key, tag, namespace, all
    /// (without calling the service), and maps the service's failure to 500.
    @Test func invalidationScopesAreCheckedAndFailuresMapped() async throws {
        let server = try await TestServer.start()
        let bad: [(body: String, says: String, param: String?)] = [
            (#"{"tag":"a","all":true}"#, "exactly one", nil),
            (#"{}"#, "exactly one", nil),
            (#"{"key":"xyz"}"#, "cache key", nil),
            (#"{"all":false}"#, "all must be true", "all"),
            (#"[1]"#, "JSON object", nil),
        ]
        for b in bad {
            let r = try await server.exchange(HTTP.post("/v1/cache/invalidate", b.body))
            #expect(r.status == 400, "\(b.body): \(r.status) \(r.text)")
            #expect(r.errorMessage?.contains(b.says) == true, "\(b.body): \(r.text)")
            if let param = b.param { #expect(r.errorParam == param, "\(b.body): \(r.text)") }
        }
        #expect(server.service.record.withLock { $0.invalidationsStarted } == 0)
        let broken = try await server.exchange(HTTP.post("/v1/cache/invalidate", #"{"namespace":"broken"}"#))
        #expect(broken.status == 500, "\(broken.text)")
        #expect(broken.errorMessage?.contains("read-only") == true, "\(broken.text)")
        await server.stop()
    }
}
