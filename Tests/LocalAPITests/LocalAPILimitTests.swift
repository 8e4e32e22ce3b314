import Foundation
import OutpostCore
import OutpostTesting
import Testing

/// The connection limits with a real socket: idle connections are closed, at the cap an idle
/// connection makes room, the reserve answers health and admin only, and beyond it connections
/// are refused.
@Suite struct LocalAPILimitTests {
    /// With a 3 s idle timeout: a connection that sends nothing, one that stops half-way through
    /// its head, one that trickles its head a byte at a time, and a keep-alive connection after
    /// its response are all closed after about three seconds (generous bounds: the machine is
    /// shared, and the suite runs beside the engine tests; a shorter timeout could expire between
    /// a connect and its first bytes).
    @Test func silentSlowAndIdleConnectionsCloseAtTheIdleTimeout() async throws {
        let server = try await TestServer.start { $0.idleTimeout = .seconds(3) }
        let silent = try await server.connect()
        let halfHead = try await server.connect()
        try await halfHead.send("GET /health HTTP/1.1\r\nHost: out")
        let trickle = try await server.connect()
        try await trickle.send("GET /health HTTP/1.1\r\n")
        let keepAlive = try await server.connect()
        try await keepAlive.send(HTTP.get("/health"))
        #expect(try await keepAlive.response().status == 200)

        async let silentFor = silent.secondsUntilClosed(timeout: 20)
        async let halfHeadFor = halfHead.secondsUntilClosed(timeout: 20)
        async let keepAliveFor = keepAlive.secondsUntilClosed(timeout: 20)
        let trickled = trickle.connection
        async let trickleFor: Double? = blocking {
            let start = Date()
            while Date().timeIntervalSince(start) < 20 {
                if trickled.receive(timeout: 0.2) == nil || (try? trickled.send("X")) == nil {
                    return Date().timeIntervalSince(start)
                }
            }
            return nil
        }
        let closed = await [("silent", silentFor), ("half a head", halfHeadFor), ("trickled head", trickleFor),
                            ("idle keep-alive", keepAliveFor)]
        for (name, after) in closed {
            let seconds = try #require(after, "\(name): not closed within 20 s")
            #expect(seconds > 1 && seconds < 15, "\(name): closed after \(seconds) s with a 3 s idle timeout")
        }
        [silent, halfHead, trickle, keepAlive].forEach { $0.close() }
        await server.stop()
    }

    /// At the cap, a new connection takes the place of the one idle the longest, which is closed.
    @Test func atTheCapTheLongestIdleConnectionMakesRoom() async throws {
        let server = try await TestServer.start {
            $0.maxConnections = 2
            $0.reservedConnections = 1
            $0.idleTimeout = .seconds(30)  // only the cap may close a connection here
        }
        let first = try await server.connect()
        try await first.send(HTTP.get("/health"))
        #expect(try await first.response().status == 200)
        let second = try await server.connect()
        try await second.send(HTTP.get("/health"))
        #expect(try await second.response().status == 200)

        let third = try await server.connect()
        try await third.send(HTTP.post(HTTP.chat("hi")))
        #expect(try await third.response().status == 200)
        #expect(await first.secondsUntilClosed(timeout: 3) != nil, "the longest idle connection was not closed")
        try await second.send(HTTP.get("/metrics"))
        let metrics = try await second.response()
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("outpost_localapi_connections_evicted_total 1\n"), "\(metrics.text)")
        [first, second, third].forEach { $0.close() }
        await server.stop()
    }

    /// Every connection busy: a new one gets the reserve, where `/health` and the admin endpoints
    /// answer and a completion is refused 503; with the reserve busy too, a new connection is
    /// refused 503 and closed. Once the busy clients leave, completions are served again.
    @Test func atTheCapTheReserveAnswersHealthAndBeyondItConnectionsAreRefused() async throws {
        let service = ScriptedService()
        let server = try await TestServer.start(service: service) {
            $0.maxConnections = 2
            $0.reservedConnections = 1
            $0.idleTimeout = .seconds(20)
        }
        var hung: [Client] = []
        for _ in 0..<2 {
            let c = try await server.connect()
            try await c.send(HTTP.post(HTTP.chat("hang")))
            hung.append(c)
        }
        await eventually("both answers started") { service.started == 2 }

        let reserved = try await server.connect()
        try await reserved.send(HTTP.get("/health"))
        #expect(try await reserved.response(timeout: 5).status == 200)
        try await reserved.send(HTTP.get("/v1/cache/stats"))
        #expect(try await reserved.response(timeout: 5).status == 200)
        try await reserved.send(HTTP.get("/metrics"))
        let metrics = try await reserved.response(timeout: 5)
        #expect(metrics.text.contains("outpost_localapi_connections{kind=\"normal\"} 2\n"), "\(metrics.text)")
        #expect(metrics.text.contains("outpost_localapi_connections{kind=\"reserved\"} 1\n"), "\(metrics.text)")

        // A completion on the reserve (this connection replaces the idle reserved one).
        let refusedCompletion = try await server.exchange(HTTP.post(HTTP.chat("hi")), timeout: 5)
        #expect(refusedCompletion.status == 503, "\(refusedCompletion.text)")
        #expect(refusedCompletion.errorType == "server_busy")
        #expect(refusedCompletion.errorMessage?.contains("only /health") == true, "\(refusedCompletion.text)")
        #expect(refusedCompletion.headers["retry-after"] == "1")
        #expect(service.calls == 2)
        #expect(await reserved.secondsUntilClosed(timeout: 3) != nil, "the idle reserved connection was not replaced")

        // The reserve busy too (an invalidation held by the service): refused outright.
        service.record.withLock { $0.holdInvalidations = true }
        let admin = try await server.connect()
        try await admin.send(HTTP.post("/v1/cache/invalidate", #"{"all":true}"#))
        await eventually("the invalidation started") { service.record.withLock { $0.invalidationsStarted } == 1 }
        let refused = try await server.connect()
        let answer = try await refused.response(timeout: 5)
        #expect(answer.status == 503, "\(answer.text)")
        #expect(answer.errorMessage?.contains("all are busy") == true, "\(answer.text)")
        #expect(await refused.secondsUntilClosed(timeout: 3) != nil, "a refused connection stayed open")

        service.releaseInvalidations()
        #expect(try await admin.response(timeout: 5).status == 200)
        hung.forEach { $0.close() }
        await eventually("both answers cancelled") { service.cancelled == 2 }
        #expect(try await server.exchange(HTTP.post(HTTP.chat("hi")), timeout: 5).status == 200)
        admin.close()
        refused.close()
        await server.stop()
    }
}
