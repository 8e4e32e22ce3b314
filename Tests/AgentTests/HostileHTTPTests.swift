#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Inference
import OutpostTesting
import Testing

/// Hostile clients of the real agent's Unix socket (issue 17): each attack as the client would
/// make it, over raw connections, and a seeded fuzzer over request heads and bodies. Each test
/// failed against the agent before the connection limits, cancellation and framing checks.
@Suite(.serialized) struct HostileHTTPTests {
    static func chat(_ content: String, maxTokens: Int = 8, extra: String = "") -> String {
        let escaped = String(data: try! JSONSerialization.data(withJSONObject: [content]), encoding: .utf8)!
        return "{\"messages\":[{\"role\":\"user\",\"content\":\(escaped.dropFirst().dropLast())}],\"max_tokens\":\(maxTokens)\(extra)}"
    }

    static func post(_ body: String, path: String = "/v1/chat/completions", headers: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: outpost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)"
    }

    /// One request on a fresh connection, and its response.
    static func exchange(_ agent: AgentProcess, _ raw: String, timeout: Double = 30) throws -> RawHTTPResponse {
        let c = try UnixSocketConnection(path: agent.socketPath)
        try c.send(raw)
        return try c.readResponse(timeout: timeout)
    }

    static func seconds(since start: Date) -> Double { Date().timeIntervalSince(start) }

    // MARK: Connection limits

    /// 300 idle connections (the issue's attack: about 256 were held and the backlog filled, and
    /// `/health` timed out for 30 s). Now each new connection at the cap replaces the one idle
    /// the longest, and `/health` answers at once, again after the 300 are opened anew.
    @Test func healthAnswersWithin100msUnder300IdleConnections() throws {
        let agent = try AgentProcess()
        for round in 1...2 {
            var idle: [UnixSocketConnection] = []
            for _ in 0..<300 { idle.append(try UnixSocketConnection(path: agent.socketPath)) }
            usleep(200_000)
            var worst = 0.0
            for _ in 0..<10 {
                let start = Date()
                let r = try Self.exchange(agent, "GET /health HTTP/1.1\r\nHost: outpost\r\n\r\n", timeout: 5)
                worst = max(worst, Self.seconds(since: start))
                #expect(r.status == 200)
            }
            print("round \(round): /health under 300 idle connections, slowest of 10: \(Int(worst * 1000)) ms")
            #expect(worst < 0.1, "/health took \(worst) s under 300 idle connections")
            // The oldest idle connections made room: the agent closed them.
            #expect(idle[0].closesWithin(2))
        }
        let metrics = try agent.curl(["/metrics"]).body
        let evicted = metrics.split(separator: "\n").first { $0.hasPrefix("outpost_localapi_connections_evicted_total ") }
        #expect((evicted?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 88, "\(evicted ?? "no eviction counter")")
        agent.stop()
    }

    /// A head sent one byte at a time (slowloris) is cut off at the idle timeout, however long
    /// the client keeps trickling; an idle keep-alive connection is closed after it too.
    @Test func slowHeadsAndIdleKeepAliveConnectionsAreClosedAtTheIdleTimeout() throws {
        let agent = try AgentProcess(configJSON: #"{"limits":{"idle_timeout_s":2}}"#)
        let slow = try UnixSocketConnection(path: agent.socketPath)
        let start = Date()
        try slow.send("GET /health HTTP/1.1\r\nHost: outpost\r\n")
        var cutAfter: Double?
        while Self.seconds(since: start) < 8 {
            if slow.receive(timeout: 0.25) == nil || (try? slow.send("X")) == nil {
                cutAfter = Self.seconds(since: start)
                break
            }
        }
        let cut = try #require(cutAfter, "a trickled head was not cut off in 8 s")
        #expect(cut > 1.5 && cut < 3.5, "cut off after \(cut) s with a 2 s idle timeout")

        let keepAlive = try UnixSocketConnection(path: agent.socketPath)
        try keepAlive.send("GET /health HTTP/1.1\r\nHost: outpost\r\n\r\n")
        #expect(try keepAlive.readResponse(timeout: 5).status == 200)
        let idleSince = Date()
        #expect(keepAlive.closesWithin(5))
        let idleFor = Self.seconds(since: idleSince)
        #expect(idleFor > 1.5 && idleFor < 3.5, "closed after \(idleFor) s idle")
        agent.stop()
    }

    /// With every one of the 256 connections busy (each mid-way through sending a body), a new
    /// connection is admitted on the reserve: `/health` and the admin endpoints answer there,
    /// a completion is refused with 503 naming the limit.
    @Test func atTheCapHealthAndAdminStillAnswer() throws {
        let agent = try AgentProcess()
        var busy: [UnixSocketConnection] = []
        let partial = "POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nContent-Length: 200\r\n\r\n{\"messages\""
        for _ in 0..<256 {
            let c = try UnixSocketConnection(path: agent.socketPath)
            try c.send(partial)
            busy.append(c)
        }
        usleep(300_000)
        let start = Date()
        let health = try Self.exchange(agent, "GET /health HTTP/1.1\r\nHost: outpost\r\n\r\n", timeout: 5)
        let took = Self.seconds(since: start)
        #expect(health.status == 200)
        #expect(took < 0.1, "/health on the reserve took \(took) s")
        let stats = try Self.exchange(agent, "GET /v1/cache/stats HTTP/1.1\r\nHost: outpost\r\n\r\n", timeout: 5)
        #expect(stats.status == 200)
        let refused = try Self.exchange(agent, Self.post(Self.chat("hi", maxTokens: 2)), timeout: 5)
        #expect(refused.status == 503, "\(refused.text)")
        #expect(refused.errorMessage?.contains("only /health") == true, "\(refused.text)")
        #expect(refused.headers["retry-after"] != nil)
        let metrics = try Self.exchange(agent, "GET /metrics HTTP/1.1\r\nHost: outpost\r\n\r\n", timeout: 5)
        #expect(metrics.text.contains("outpost_localapi_connections{kind=\"reserved\"}"))
        busy.forEach { $0.close() }
        // Once the busy connections are gone, completions are served again.
        usleep(200_000)
        #expect(try Self.exchange(agent, Self.post(Self.chat("hi", maxTokens: 2))).status == 200)
        agent.stop()
    }

    // MARK: Abandoned work

    /// A client that closes a 1,200-token stream after 5 events frees the model at once (the
    /// issue measured a 12 s wait for the next request); the same for a non-streamed request
    /// whose client leaves. Nothing of the cancelled answers is cached.
    @Test func abandonedGenerationsFreeTheModelAtOnceAndAreNotCached() throws {
        let agent = try AgentProcess(extraArguments: ["--ctx", "2048"])
        // Greedy and cacheable: the path where the generation runs in the cache's shared task.
        let long = Self.post(Self.chat("Write a very long story about the sea and a lighthouse keeper.", maxTokens: 1200,
                                       extra: ",\"stream\":true"))
        let stream = try UnixSocketConnection(path: agent.socketPath)
        try stream.send(long)
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(60)
        while String(decoding: received, as: UTF8.self).components(separatedBy: "data: ").count - 1 < 5, Date() < deadline {
            guard let more = stream.receive(timeout: 1) else { break }
            received += more
        }
        stream.close()
        let closed = Date()
        let next = try Self.exchange(agent, Self.post(Self.chat("Say hi.", maxTokens: 2, extra: ",\"cache\":\"bypass\"")))
        let waited = Self.seconds(since: closed)
        #expect(next.status == 200, "\(next.text)")
        let queueMs = ((next.json?["outpost"] as? [String: Any])?["timings"] as? [String: Any])?["queue_ms"] as? Double ?? -1
        print("abandoned 1,200-token stream: next request answered \(Int(waited * 1000)) ms after the close, queue_ms \(queueMs)")
        #expect(waited < 1.0, "the next request waited \(waited) s")
        #expect(queueMs >= 0 && queueMs < 250, "queue_ms \(queueMs)")

        // Non-streamed: the client leaves while its answer is being generated.
        let whole = try UnixSocketConnection(path: agent.socketPath)
        try whole.send(Self.post(Self.chat("Write a very long story about a river.", maxTokens: 1200)))
        usleep(400_000)
        whole.close()
        let closed2 = Date()
        let next2 = try Self.exchange(agent, Self.post(Self.chat("Say yes.", maxTokens: 2, extra: ",\"cache\":\"bypass\"")))
        let waited2 = Self.seconds(since: closed2)
        #expect(next2.status == 200)
        print("abandoned non-streamed request: next request answered \(Int(waited2 * 1000)) ms after the close")
        #expect(waited2 < 1.0, "the next request waited \(waited2) s")

        // Neither cancelled answer was cached (the bypass requests are never filled).
        usleep(300_000)
        let stats = try #require(try agent.curl(["/v1/cache/stats"]).json)
        #expect(stats["fills"] as? Int == 0, "\(stats)")
        #expect(stats["entries"] as? Int == 0, "\(stats)")
        agent.stop()
    }

    /// Two clients ask the same cacheable question; the first (whose generation the second
    /// waits on) leaves. The second still gets the whole answer, which is then cached.
    @Test func aWaitingRequestOutlivesTheClientItWaitedOn() throws {
        let agent = try AgentProcess()
        let question = Self.chat("Tell me about lighthouses.", maxTokens: 200)
        let leader = try UnixSocketConnection(path: agent.socketPath)
        try leader.send(Self.post(Self.chat("Tell me about lighthouses.", maxTokens: 200, extra: ",\"stream\":true")))
        var received: [UInt8] = []
        while String(decoding: received, as: UTF8.self).components(separatedBy: "data: ").count - 1 < 3 {
            guard let more = leader.receive(timeout: 10), !more.isEmpty else { break }
            received += more
        }
        let follower = try UnixSocketConnection(path: agent.socketPath)
        try follower.send(Self.post(question))
        usleep(150_000)
        leader.close()
        let answer = try follower.readResponse(timeout: 60)
        #expect(answer.status == 200, "\(answer.text)")
        let usage = answer.json?["usage"] as? [String: Any]
        #expect((usage?["completion_tokens"] as? Int ?? 0) > 0, "\(answer.text)")
        let again = try Self.exchange(agent, Self.post(question))
        #expect((again.json?["outpost"] as? [String: Any])?["cached"] as? Bool == true, "\(again.text)")
        agent.stop()
    }

    // MARK: Bad numbers and framing

    /// Each bad number or framing gets a 400 (413 for sizes over the limit) whose `param` names
    /// the field or the part of the framing, never a 500 and never a wait for the timeout.
    @Test func badNumbersAndFramingGet400NamingThem() throws {
        let agent = try AgentProcess()
        let numbers: [(String, String)] = [
            (#""temperature":3.5e38"#, "temperature"),
            (#""top_p":1e-320"#, "top_p"),
            (#""temperature":1e400"#, "temperature"),
            (#""top_p":-2.5e-400"#, "top_p"),
            (#""temperature":-0.5"#, "temperature"),
            (#""temperature":1e-300"#, "temperature"),
            (#""repeat_penalty":1e39"#, "repeat_penalty"),
            (#""repeat_penalty":0"#, "repeat_penalty"),
            (#""top_k":1e300"#, "top_k"),
            (#""top_k":-1"#, "top_k"),
            (#""max_tokens":1e300"#, "max_tokens"),
            (#""max_tokens":-5"#, "max_tokens"),
            (#""max_tokens":100000"#, "max_tokens"),
            (#""seed":1e20"#, "seed"),
            (#""seed":-1"#, "seed"),
        ]
        for (field, param) in numbers {
            let r = try Self.exchange(agent, Self.post(Self.chat("hi", maxTokens: 2, extra: ",\(field)")
                .replacingOccurrences(of: "\"max_tokens\":2,\"max_tokens\"", with: "\"max_tokens\"")))
            #expect(r.status == 400, "\(field): \(r.status) \(r.text)")
            #expect(r.errorParam == param, "\(field): \(r.text)")
        }

        let chunked = "POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nTransfer-Encoding: chunked\r\n\r\n"
        let framing: [(name: String, request: String, status: Int, param: String, says: String)] = [
            ("chunk size zz", chunked + "zz\r\n{}\r\n0\r\n\r\n", 400, "chunk-size", "zz"),
            ("negative chunk size", chunked + "-5\r\nabcde\r\n0\r\n\r\n", 400, "chunk-size", "-5"),
            ("huge chunk size", chunked + "7fffffffffffffff\r\n{\"messages\"", 413, "chunk-size", "7fffffffffffffff"),
            ("chunks past the limit", chunked + "80000\r\n" + String(repeating: "a", count: 0x80000) + "\r\n80001\r\n", 413, "chunk-size", "limit"),
            ("chunk longer than its size", chunked + "2\r\nabcdef\r\n0\r\n\r\n", 400, "chunk-data", "CRLF"),
            ("huge Content-Length", "POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nContent-Length: 99999999999999999999\r\n\r\n{",
             413, "Content-Length", "larger than"),
            ("non-numeric Content-Length", "POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nContent-Length: 12abc\r\n\r\n{}",
             400, "Content-Length", "12abc"),
            ("two Content-Lengths", "POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
             400, "Content-Length", "more than one"),
            ("Content-Length and chunked", "POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
             400, "Transfer-Encoding", "both"),
            ("gzip transfer coding", "POST /v1/chat/completions HTTP/1.1\r\nHost: outpost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
             400, "Transfer-Encoding", "gzip"),
        ]
        for f in framing {
            let start = Date()
            let c = try UnixSocketConnection(path: agent.socketPath)
            try? c.send(f.request)
            let r = try c.readResponse(timeout: 10)
            let took = Self.seconds(since: start)
            #expect(r.status == f.status, "\(f.name): \(r.status) \(r.text)")
            #expect(r.errorParam == f.param, "\(f.name): \(r.text)")
            #expect(r.errorMessage?.contains(f.says) == true, "\(f.name): \(r.text)")
            #expect(r.headers["connection"] == "close", "\(f.name): \(r.headers)")
            #expect(took < 1, "\(f.name): answered after \(took) s")
            #expect(c.closesWithin(2), "\(f.name): the connection stayed open")
        }

        // The same bad chunk size line arriving after its head (the request is being read by
        // then, and its route answers) is named just the same.
        let late = try UnixSocketConnection(path: agent.socketPath)
        try late.send(chunked + "5\r\n{\"mes\r\n")
        usleep(100_000)
        try late.send("zz\r\n")
        let lateAnswer = try late.readResponse(timeout: 5)
        #expect(lateAnswer.status == 400, "\(lateAnswer.text)")
        #expect(lateAnswer.errorParam == "chunk-size", "\(lateAnswer.text)")

        // A request line NIO's parser refuses is answered by name too.
        let garbage = try Self.exchange(agent, "BL\u{1}AH / HTTP/1.1\r\nHost: outpost\r\n\r\n", timeout: 5)
        #expect(garbage.status == 400)
        #expect(["request-line", "header", "message"].contains(garbage.errorParam ?? ""), "\(garbage.text)")

        // A well-framed chunked request still works.
        let body = Self.chat("hi", maxTokens: 2)
        let ok = try Self.exchange(agent, chunked + String(body.utf8.count, radix: 16) + ";ext=1\r\n" + body + "\r\n0\r\n\r\n")
        #expect(ok.status == 200, "\(ok.text)")
        #expect(try agent.curl(["/health"]).status == 200)
        agent.stop()
    }

    /// HTTP/1.0 closes after the response unless `Connection: keep-alive` is asked for (the
    /// issue saw them held open 30 s); a streamed answer to HTTP/1.0 ends with the connection,
    /// not with chunked coding the client cannot read.
    @Test func http10ClosesAfterTheResponseUnlessKeepAliveIsAsked() throws {
        let agent = try AgentProcess()
        let plain = try UnixSocketConnection(path: agent.socketPath)
        try plain.send("GET /health HTTP/1.0\r\n\r\n")
        let r = try plain.readResponse(timeout: 5)
        #expect(r.status == 200)
        #expect(r.statusLine.hasPrefix("HTTP/1.0 "))
        #expect(r.headers["connection"] == "close")
        #expect(plain.closesWithin(1), "the HTTP/1.0 connection stayed open")

        let kept = try UnixSocketConnection(path: agent.socketPath)
        try kept.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let first = try kept.readResponse(timeout: 5)
        #expect(first.headers["connection"]?.lowercased() == "keep-alive")
        try kept.send("GET /v1/models HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try kept.readResponse(timeout: 5).status == 200)

        let streamed = try UnixSocketConnection(path: agent.socketPath)
        let body = Self.chat("Name a color.", maxTokens: 4, extra: ",\"stream\":true")
        try streamed.send("POST /v1/chat/completions HTTP/1.0\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        let events = try streamed.readResponse(timeout: 30)
        #expect(events.status == 200)
        #expect(events.headers["transfer-encoding"] == nil)
        #expect(events.text.hasSuffix("data: [DONE]\n\n"), "\(events.text)")
        agent.stop()
    }

    // MARK: State directory

    /// A second agent on a state directory in use is refused, even with a socket of its own,
    /// and says which directory and which process holds it.
    @Test func aSecondAgentOnTheSameStateDirectoryIsRefused() throws {
        let first = try AgentProcess()
        let pid = try #require(first.process?.processID)
        let otherSocket = "/tmp/op-\(UUID().uuidString.prefix(8)).sock"
        defer { unlink(otherSocket) }
        let r = try OutpostBinary.run(["run", "--model", try TestModel.path(), "--state-dir", first.stateDirectory,
                                       "--socket", otherSocket], timeout: 60)
        #expect(r.status == 1)
        #expect(r.stderr.contains(first.stateDirectory), "\(r.stderr)")
        #expect(r.stderr.contains("pid \(pid)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: otherSocket))
        #expect(try first.curl(["/health"]).status == 200)
        // Released with the process, however it ends.
        first.kill9()
        try first.start()
        #expect(try first.curl(["/health"]).status == 200)
        first.stop()
    }

    // MARK: Fuzzing

    /// 500 seeded cases (at most 20 s) of mutated request heads and bodies: nasty numbers in
    /// every field, flipped and cut bytes, broken lengths and chunk framing, odd methods, paths
    /// and versions, pipelined pairs. No case may get a 500, and afterwards the agent answers
    /// `/health` and a real question.
    @Test func seededFuzzerLeavesTheAgentAnswering() throws {
        let agent = try AgentProcess()
        // CI runs the fixed seed; OUTPOST_FUZZ_SEED and OUTPOST_FUZZ_CASES explore further by hand.
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["OUTPOST_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x0075_7470_6f73_7417
        let maxCases = environment["OUTPOST_FUZZ_CASES"].flatMap { Int($0) } ?? 500
        let maxSeconds = environment["OUTPOST_FUZZ_CASES"] == nil ? 20.0 : 600
        var fuzzer = RequestFuzzer(seed: seed)
        let start = Date()
        var cases = 0
        var statuses: [Int: Int] = [:]
        while cases < maxCases, Self.seconds(since: start) < maxSeconds {
            cases += 1
            let request = fuzzer.next()
            guard let c = try? UnixSocketConnection(path: agent.socketPath) else {
                Issue.record("case \(cases): cannot connect")
                break
            }
            try? c.send(request.bytes)
            // A complete request gets an answer; a truncated one waits for bytes that never
            // come. Either way the client gives up after a short while (and a generation it
            // started is cancelled when it closes).
            let response = try? c.readResponse(timeout: request.complete ? 1 : 0.05)
            c.close()
            if let response {
                statuses[response.status, default: 0] += 1
                #expect(response.status < 500 || response.status == 503,
                        "seed \(seed) case \(cases): \(response.status) for \(request.description)\n\(response.text.prefix(400))")
            }
            if cases % 50 == 0 {
                #expect(try agent.curl(["/health"], timeout: 5).status == 200, "seed \(seed): /health failed after case \(cases)")
            }
        }
        print("fuzzer seed \(seed): \(cases) cases in \(String(format: "%.1f", Self.seconds(since: start))) s, statuses \(statuses.sorted { $0.key < $1.key })")
        #expect(cases >= min(maxCases, 100))
        #expect(agent.process?.isRunning == true)
        let health = try Self.exchange(agent, "GET /health HTTP/1.1\r\nHost: outpost\r\n\r\n", timeout: 5)
        #expect(health.status == 200)
        let answer = try Self.exchange(agent, Self.post(Self.chat("What is the capital of France?", maxTokens: 8)))
        #expect(answer.status == 200, "\(answer.text)")
        let content = ((answer.json?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        #expect(content?.isEmpty == false)
        agent.stop()
    }

}

/// Seeded request mutations for the fuzzer: deterministic for a seed (SplitMix64), so a failure
/// is reproduced by its seed and case number.
struct RequestFuzzer {
    struct Request: CustomStringConvertible {
        let bytes: [UInt8]
        /// Whether the framing promises a complete request (else the agent may wait for more).
        let complete: Bool
        let kind: String
        var description: String { "\(kind): \(String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription)" }
    }

    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func random() -> UInt64 { generator.next() }

    mutating func below(_ n: Int) -> Int { Int(random() % UInt64(n)) }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    static let numbers = ["3.5e38", "1e-320", "-0", "0", "1", "-1", "1e308", "-1e308", "1e400", "-2.5e-400", "0.0000001",
                          "9007199254740993", "2147483648", "18446744073709551616", "1.5", "2", "100", "101", "1e-7",
                          "\"NaN\"", "\"1e5\"", "null", "true", "[]", "{}", "\"\""]
    static let fields = ["temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "seed", "repeat_penalty",
                         "n", "stream", "cache", "namespace", "cache_tags", "model", "stop"]
    static let paths = ["/v1/chat/completions", "/v1/completions", "/health", "/metrics", "/v1/models", "/v1/cache/stats",
                        "/v1/cache/invalidate", "/", "/v1/chat/completions?x=1", "/%00", "/v1/../health", "*"]
    static let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "G\u{1}T", "post", ""]
    static let versions = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.1x", "HTTP/11", ""]

    /// A JSON body: a valid chat request whose fields get nasty values, or raw bytes mutated.
    mutating func body(path: String) -> [UInt8] {
        var fields: [String] = []
        if path == "/v1/completions" {
            fields.append(#""prompt":"The sky is""#)
        } else if path == "/v1/cache/invalidate" {
            fields.append(pick([#""tag":"x""#, #""key":"00""#, #""namespace":"""#, #""all":false"#, #""tag":1e400"#]))
        } else {
            fields.append(pick([#""messages":[{"role":"user","content":"hi"}]"#, #""messages":[]"#, #""messages":[{"role":"user"}]"#,
                                #""messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]"#,
                                #""messages":[{"role":"x","content":"hi"}]"#, #""messages":"hi""#]))
        }
        fields.append(#""max_tokens":\#(pick(["1", "2", "4", "9"]))"#)
        for _ in 0..<below(4) { fields.append("\"\(pick(Self.fields))\":\(pick(Self.numbers))") }
        var bytes = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        if chance(30) {
            for _ in 0..<(1 + below(4)) where !bytes.isEmpty {
                let i = below(bytes.count)
                switch below(3) {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: random())
                case 1: bytes.remove(at: i)
                default: bytes.insert(pick(Array("{}[]\",:0e-.\\\u{0}".utf8)), at: i)
                }
            }
        }
        return bytes
    }

    /// A chunked framing of `body`: sizes right or wrong, extensions, bad size lines.
    mutating func chunked(_ body: [UInt8]) -> (bytes: [UInt8], complete: Bool) {
        var out: [UInt8] = []
        var rest = body[...]
        var complete = true
        while !rest.isEmpty {
            let n = min(rest.count, 1 + below(max(1, rest.count)))
            var size = String(n, radix: 16)
            switch below(12) {
            case 0: size = pick(["zz", "-5", "7fffffffffffffff", "", " 5", "0x5", "fffffffffffffffffffff"]); complete = false
            case 1: size += pick([";a=b", "; x", ";"])
            case 2: size = String(n + 3, radix: 16); complete = false
            default: break
            }
            out += Array((size + "\r\n").utf8) + rest.prefix(n) + [13, 10]
            rest = rest.dropFirst(n)
        }
        out += Array((chance(85) ? "0\r\n\r\n" : "0\r\nX-Trailer: 1\r\n\r\n").utf8)
        return (out, complete)
    }

    mutating func next() -> Request {
        let method = chance(65) ? "POST" : chance(45) ? "GET" : pick(Self.methods)
        let path = chance(60) ? pick(["/v1/chat/completions", "/v1/completions"]) : pick(Self.paths)
        let version = chance(85) ? pick(["HTTP/1.1", "HTTP/1.0"]) : pick(Self.versions)
        let body = method == "GET" && chance(70) ? [] : self.body(path: path)
        var headers = ["Host: outpost"]
        var framed = body
        var complete = true
        var kind = "body"
        switch below(10) {
        case 0, 1:
            let c = chunked(body)
            headers.append(pick(["Transfer-Encoding: chunked", "transfer-encoding: CHUNKED", "Transfer-Encoding: chunked"]))
            framed = c.bytes
            complete = c.complete
            kind = "chunked"
        case 2:
            let length = pick(["\(body.count + 10)", "-1", "abc", "99999999999999999999", "\(body.count), \(body.count)", "1e3"])
            headers.append("Content-Length: \(length)")
            complete = false
            kind = "length"
        case 3:
            headers.append("Content-Length: \(body.count)")
            headers.append(pick(["Content-Length: \(body.count + 1)", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip",
                                 "Content-Length : \(body.count)", " folded", "X-\u{1}: y", String(repeating: "X", count: 9000) + ": 1"]))
            complete = false
            kind = "headers"
        case 4:
            headers.append("Content-Length: \(body.count)")
            framed = Array(body.prefix(below(body.count + 1)))
            complete = framed.count == body.count
            kind = "truncated"
        default:
            if !body.isEmpty || method != "GET" { headers.append("Content-Length: \(body.count)") }
        }
        if chance(10) { headers.append("Connection: " + pick(["close", "keep-alive", "upgrade", "Upgrade, close"])) }
        if chance(5) { headers.append("Expect: 100-continue") }
        var bytes = Array("\(method) \(path) \(version)\r\n\(headers.joined(separator: "\r\n"))\r\n\r\n".utf8) + framed
        if chance(8) {
            // Pipelined: a second request right behind the first.
            bytes += Array("GET /health HTTP/1.1\r\nHost: outpost\r\n\r\n".utf8)
            kind += "+pipelined"
        }
        if chance(5) {
            let cut = below(bytes.count + 1)
            bytes = Array(bytes.prefix(cut))
            complete = false
            kind += "+cut"
        }
        return Request(bytes: bytes, complete: complete, kind: kind)
    }
}
