import FoundationEssentials
@testable import LocalAPI
import OutpostCore
import Testing

// The pieces behind HostileHTTPTests, without the agent: the socket's two state machines step
// by step, and the request validation every door shares.

@Suite struct RequestFramingStateMachineTests {
    typealias Machine = RequestFramingGuard.StateMachine
    static let limit = 1 << 20

    /// Feeds `text` in pieces of `step` bytes; returns the first verdict that is not `.forward`
    /// and how many bytes had been fed before the piece that got it.
    static func feed(_ text: String, step: Int = .max, machine: inout Machine) -> (Machine.Verdict, offset: Int) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let piece = Array(bytes[offset..<min(bytes.count, offset + step)])
            let verdict = piece.withUnsafeBytes { machine.consume($0) }
            if verdict != .forward { return (verdict, offset) }
            offset += piece.count
        }
        return (.forward, offset)
    }

    static func verdict(_ text: String, step: Int = .max) -> Machine.Verdict {
        var m = Machine(maxBodyBytes: limit)
        return feed(text, step: step, machine: &m).0
    }

    static func rejection(_ text: String, step: Int = .max) -> (HTTPFramingError, forwarding: Int)? {
        if case .reject(let e, let n) = verdict(text, step: step) { return (e, n) }
        return nil
    }

    static let chunkedHead = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

    @Test func wellFramedRequestsPassWholeAtAnyPieceSize() {
        let pipelined = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
            + "\r\n"  // an empty line between requests is allowed
            + Self.chunkedHead + "5;ext=\"v\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
            + "GET /health HTTP/1.1\nHost: x\n\n"  // bare LF line ends
            + "GET /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        for step in [1, 2, 3, 7, 64, .max] {
            #expect(Self.verdict(pipelined, step: step) == .forward, "step \(step)")
        }
    }

    @Test func aChunkSizeThatIsNotHexadecimalIsRefusedBeforeItsLineIsPassedOn() throws {
        for (line, shown) in [("zz", "zz"), ("-5", "-5"), ("0x5", "0x5"), (" 5", " 5")] {
            let text = Self.chunkedHead + "3\r\nabc\r\n" + line + "\r\nhello\r\n0\r\n\r\n"
            let (error, forwarding) = try #require(Self.rejection(text), "\(line)")
            #expect(error.status == .badRequest)
            #expect(error.framing == "chunk-size")
            #expect(error.message.contains("\"\(shown)\""), "\(error.message)")
            // Everything before the bad line goes on, the line itself does not.
            #expect(forwarding == Self.chunkedHead.utf8.count + "3\r\nabc\r\n".utf8.count)
        }
        let empty = try #require(Self.rejection(Self.chunkedHead + "\r\n"))
        #expect(empty.0.framing == "chunk-size")
    }

    @Test func aChunkSizeOverTheLimitIsRefusedAtTheDigitThatCrossesIt() throws {
        // No line end, no data: refused as soon as the size passes 1 MiB (the sixth digit).
        let (error, forwarding) = try #require(Self.rejection(Self.chunkedHead + "7fffff"))
        #expect(error.status == .contentTooLarge)
        #expect(error.framing == "chunk-size")
        #expect(forwarding == Self.chunkedHead.utf8.count)
        let full = try #require(Self.rejection(Self.chunkedHead + "7fffffffffffffff\r\n{"))
        #expect(full.0.message.contains("0x7fffffffffffffff"), "\(full.0.message)")
        // Chunks that each fit but together pass the limit.
        let sum = try #require(Self.rejection(Self.chunkedHead + "80000\r\n" + String(repeating: "a", count: 0x80000) + "\r\n80001\r\n"))
        #expect(sum.0.status == .contentTooLarge)
        // Leading zeros are digits too, not size.
        #expect(Self.verdict(Self.chunkedHead + "0000000000000003\r\nabc\r\n0\r\n\r\n") == .forward)
    }

    @Test func headFramingFaultsAreNamed() throws {
        let cases: [(String, String, Int)] = [
            ("Content-Length: 2000000\r\n\r\n", "Content-Length", 413),
            ("Content-Length: 99999999999999999999999\r\n\r\n", "Content-Length", 413),
            ("Content-Length: 12abc\r\n\r\n", "Content-Length", 400),
            ("Content-Length: -1\r\n\r\n", "Content-Length", 400),
            ("Content-Length: \r\n\r\n", "Content-Length", 400),
            ("Content-Length: 2\r\nContent-Length: 2\r\n\r\n", "Content-Length", 400),
            ("Content-Length : 2\r\n\r\n", "Content-Length", 400),
            ("Content-Length: 2\r\n 3\r\n\r\n", "header", 400),
            ("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding", 400),
            ("Transfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding", 400),
        ]
        for (headers, framing, status) in cases {
            let (error, _) = try #require(Self.rejection("POST / HTTP/1.1\r\n" + headers + "xx"), "\(headers)")
            #expect(error.framing == framing, "\(headers): \(error)")
            #expect(Int(error.status.code) == status, "\(headers): \(error)")
        }
        // Case and spacing of names and values do not matter where HTTP says they do not.
        #expect(Self.verdict("POST / HTTP/1.1\r\ncontent-length:\t3 \r\n\r\nabc") == .forward)
        #expect(Self.verdict("POST / HTTP/1.1\r\nTRANSFER-ENCODING: Chunked\r\n\r\n0\r\n\r\n") == .forward)
    }

    @Test func chunkDataLongerThanItsSizeIsRefused() throws {
        let (error, _) = try #require(Self.rejection(Self.chunkedHead + "2\r\nabcdef\r\n"))
        #expect(error.framing == "chunk-data")
    }

    @Test func afterARejectionNothingMoreIsPassedOn() {
        var m = Machine(maxBodyBytes: Self.limit)
        let first = Self.feed(Self.chunkedHead + "zz\r\n", machine: &m).0
        #expect(first != .forward)
        #expect(Self.feed("GET /health HTTP/1.1\r\n\r\n", machine: &m).0 == .discard)
    }
}

@Suite struct ConnectionTableStateMachineTests {
    typealias Table = ConnectionRegistry.StateMachine<Int>

    @Test func underTheCapEveryConnectionIsServedInFull() {
        var t = Table(limits: .init(maxConnections: 3, reservedConnections: 1))
        for id in 1...3 { #expect(t.open(id) == .normal(evicting: nil)) }
        #expect(t.normalCount == 3)
    }

    @Test func atTheCapTheConnectionIdleTheLongestMakesRoom() {
        var t = Table(limits: .init(maxConnections: 3, reservedConnections: 1))
        for id in 1...3 { _ = t.open(id) }
        // 1 serves a request and becomes idle again after 2 and 3 opened: 2 is now idle longest.
        t.requestStarted(1)
        t.responseFinished(1)
        #expect(t.open(4) == .normal(evicting: 2))
        #expect(t.open(5) == .normal(evicting: 3))
        #expect(t.open(6) == .normal(evicting: 1))
        #expect(t.normalCount == 3)
        #expect(t.evictions == 3)
        // The evicted connections' closes do not free slots twice.
        for id in 1...3 { t.closed(id) }
        #expect(t.normalCount == 3)
        t.closed(4)
        #expect(t.normalCount == 2)
        #expect(t.open(7) == .normal(evicting: nil))
    }

    @Test func busyConnectionsAreNeverEvictedAndTheReserveTakesOver() {
        var t = Table(limits: .init(maxConnections: 2, reservedConnections: 2))
        for id in 1...2 {
            _ = t.open(id)
            t.requestStarted(id)
        }
        #expect(t.open(3) == .reserved(evicting: nil))
        #expect(t.open(4) == .reserved(evicting: nil))
        // The reserve is full of idle connections: the oldest of them makes room.
        #expect(t.open(5) == .reserved(evicting: 3))
        t.requestStarted(4)
        t.requestStarted(5)
        #expect(t.open(6) == .refused)
        #expect(t.refusals == 1)
        // A busy connection that finishes is idle, and evictable, again.
        t.responseFinished(1)
        #expect(t.isIdle(1))
        #expect(t.open(7) == .normal(evicting: 1))
    }

    @Test func pipelinedRequestsKeepAConnectionBusyUntilTheLastResponse() {
        var t = Table(limits: .init(maxConnections: 1, reservedConnections: 0))
        _ = t.open(1)
        t.requestStarted(1)
        t.requestStarted(1)
        t.responseFinished(1)
        #expect(!t.isIdle(1))
        #expect(t.open(2) == .refused)
        t.responseFinished(1)
        #expect(t.open(3) == .normal(evicting: 1))
    }
}

/// Every number a request may carry is either one the engine computes with as given, or a
/// QueryError naming the field: never a value that turns into infinity, zero or NaN in the
/// engine's 32-bit floats (which used to come back as a 500 from the sampler).
@Suite struct SamplingRangeTests {
    static func parse(_ extra: String) -> Result<CompletionRequest, QueryError> {
        let body = #"{"messages":[{"role":"user","content":"x"}]"# + extra + "}"
        return Result { () throws(QueryError) in
            try CompletionRequest.parse(Data(body.utf8), kind: .chat, defaults: SamplingParameters())
        }
    }

    @Test func outOfRangeNumbersAreRefusedByName() {
        let cases: [(String, String)] = [
            (#","temperature":3.5e38"#, "temperature"), (#","temperature":1e-320"#, "temperature"),
            (#","temperature":1e400"#, "temperature"), (#","temperature":-1e-400"#, "temperature"),
            (#","temperature":100.5"#, "temperature"), (#","temperature":-0.1"#, "temperature"),
            (#","top_p":1e-320"#, "top_p"), (#","top_p":0"#, "top_p"), (#","top_p":1.0000001"#, "top_p"),
            (#","repeat_penalty":1e39"#, "repeat_penalty"), (#","repeat_penalty":1e-320"#, "repeat_penalty"),
            (#","top_k":-1"#, "top_k"), (#","top_k":1e300"#, "top_k"),
            (#","max_tokens":0"#, "max_tokens"), (#","max_tokens":1e300"#, "max_tokens"),
            (#","seed":1e20"#, "seed"), (#","seed":-2"#, "seed"),
            (#","cache_tags":[1e999]"#, "cache_tags"),
        ]
        for (extra, field) in cases {
            guard case .failure(let e) = Self.parse(extra) else {
                Issue.record("\(extra) was accepted")
                continue
            }
            #expect(e.field == field, "\(extra): \(e)")
        }
    }

    @Test func theEdgesOfEveryRangeAreAccepted() throws {
        for extra in [#","temperature":0"#, #","temperature":-0.0"#, #","temperature":1e-6"#, #","temperature":100"#,
                      #","top_p":1e-6"#, #","top_p":1"#, #","repeat_penalty":1e-6"#, #","repeat_penalty":100"#,
                      #","top_k":0"#, #","seed":9007199254740992"#] {
            #expect(throws: Never.self, "\(extra)") { try Self.parse(extra).get() }
        }
    }

    /// A number out of a double's range deep inside something else names the innermost member.
    @Test func aNumberOutOfRangeNamesItsMember() {
        guard case .failure(let e) = Self.parse(#","metadata":{"deep":{"value":-2.5e-400}}"#) else {
            Issue.record("accepted")
            return
        }
        #expect(e.field == "value")
        #expect(e.message.contains("does not fit a 64-bit float"))
    }
}
