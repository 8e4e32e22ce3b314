import AnswerCache
import Foundation
import Inference
import OutpostCore
import OutpostTesting
import Testing
@testable import PeerSync
@testable import MQTT

/// A seeded fuzzer over what anyone on the broker can send a gateway: request payloads (with
/// hostile v5 properties and `reply_to`s), invalidation payloads and watermarks. Bounded in count
/// and time. The gateway must stay connected, publish no reply anywhere in the fleet's topics,
/// and still answer a real request and apply a real invalidation afterwards.
/// `OUTPOST_FUZZ_SEED` and `OUTPOST_FUZZ_COUNT` override the seed and the count.
@Suite(.serialized) struct SeededFuzzTests {
    /// The same sequence for the same seed everywhere.
    typealias Generator = SplitMix64

    static let seed = UInt64(ProcessInfo.processInfo.environment["OUTPOST_FUZZ_SEED"] ?? "") ?? 0x0DDB_A11_F022
    static let count = Int(ProcessInfo.processInfo.environment["OUTPOST_FUZZ_COUNT"] ?? "") ?? 300

    /// Strings that have broken parsers before: empty, huge, control characters, lone bytes of
    /// UTF-8, JSON-looking text, topic syntax.
    static let nasty: [String] = [
        "", " ", "\u{0}", "\u{1}\u{7f}", "é", "😀", "\u{FEFF}", "\\", "\"", "\\u0000", "{}", "[]", "null", "-0", "1e309",
        "outpost/site/config", "#", "+", "$SYS/x", "a/../b", String(repeating: "x", count: 5000),
        String(repeating: "é", count: 3000), "NaN", "Infinity", "<|im_end|>", "%s%n", "\r\n\r\n",
    ]
    static let numbers: [String] = [
        "0", "-1", "1", "0.5", "3.5e38", "1e-320", "1e309", "-1e309", "9007199254740993", "18446744073709551616",
        "1.0000000000000002", "-0", "2", "100000000", "0.0001",
    ]

    static func pick<T>(_ a: [T], _ g: inout Generator) -> T { a[Int.random(in: 0..<a.count, using: &g)] }
    static func chance(_ p: Double, _ g: inout Generator) -> Bool { Double.random(in: 0..<1, using: &g) < p }

    static func jsonString(_ s: String) -> String {
        String(data: try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed]), encoding: .utf8)!
            .dropFirst().dropLast().description
    }

    static func anyValue(_ g: inout Generator, depth: Int = 0) -> String {
        switch Int.random(in: 0..<(depth > 3 ? 4 : 7), using: &g) {
        case 0: return jsonString(pick(nasty, &g))
        case 1: return pick(numbers, &g)
        case 2: return pick(["true", "false", "null"], &g)
        case 3: return "\"\(Int.random(in: -5...5, using: &g))\""
        case 4: return "[" + (0..<Int.random(in: 0...3, using: &g)).map { _ in anyValue(&g, depth: depth + 1) }.joined(separator: ",") + "]"
        case 5: return "{" + (0..<Int.random(in: 0...3, using: &g)).map { _ in
                "\(jsonString(pick(nasty, &g))):\(anyValue(&g, depth: depth + 1))" }.joined(separator: ",") + "}"
        default: return String(repeating: "[", count: Int.random(in: 1...600, using: &g))
        }
    }

    /// A request: mostly well-formed JSON with fields of the wrong type or range, sometimes mangled bytes.
    static func request(_ g: inout Generator, replyTopics: [String]) -> [UInt8] {
        var fields: [String] = []
        let content = chance(0.7, &g) ? jsonString("fuzz \(g.next() % 1000)") : anyValue(&g)
        fields.append(chance(0.8, &g) ? "\"messages\":[{\"role\":\(chance(0.9, &g) ? "\"user\"" : anyValue(&g)),\"content\":\(content)}]"
                                     : "\"messages\":\(anyValue(&g))")
        for key in ["temperature", "top_p", "top_k", "max_tokens", "seed", "stream", "n", "stop", "cache", "cache_tags",
                    "namespace", "response_format", "tools", "id", "draft"] where chance(0.25, &g) {
            fields.append("\"\(key)\":\(chance(0.5, &g) ? pick(numbers, &g) : anyValue(&g))")
        }
        if chance(0.5, &g) { fields.append("\"reply_to\":\(chance(0.8, &g) ? jsonString(pick(replyTopics, &g)) : anyValue(&g))") }
        fields.shuffle(using: &g)
        var bytes = Array("{\(fields.joined(separator: ","))}".utf8)
        mangle(&bytes, &g)
        return bytes
    }

    /// An invalidation: the real shape with values out of range, extra fields (a future signature
    /// included), sometimes mangled bytes.
    static func invalidation(_ g: inout Generator) -> [UInt8] {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        var fields: [String] = []
        if chance(0.9, &g) { fields.append("\"origin\":\(chance(0.7, &g) ? "\"peer-\(g.next() % 4)\"" : anyValue(&g))") }
        // Mostly a plausible clock reading, so that numbered ones reach the gap and duplicate checks.
        let hlc = chance(0.6, &g) ? "\"\(now).\(g.next() % 5)\"" : pick([
            "\"\(now - 10_000).0\"", "\"\(now + 3_600_000).0\"", "\"0.0\"", "\"1.1\"",
            "\"\(UInt64.max)\"", "\"x.y\"", "5", anyValue(&g),
        ], &g)
        if chance(0.9, &g) { fields.append("\"hlc\":\(hlc)") }
        let scope = chance(0.5, &g) ? "{\"tag\":\"t\(g.next() % 3)\"}" : pick([
            "{\"tag\":\"t\(g.next() % 3)\"}", "{\"namespace\":\"n\(g.next() % 3)\"}", "{\"all\":true}", "{\"all\":false}",
            "{\"key\":\"\(String(repeating: "ab", count: 32))\"}", "{\"key\":\"zz\"}", "{\"tag\":\"a\",\"all\":true}",
            "{}", anyValue(&g),
        ], &g)
        if chance(0.9, &g) { fields.append("\"scope\":\(scope)") }
        if chance(0.5, &g) {
            fields.append("\"epoch\":\(chance(0.8, &g) ? "\"e\(g.next() % 3)\"" : anyValue(&g))")
            fields.append("\"seq\":\(chance(0.7, &g) ? "\(Int.random(in: 1...50, using: &g))" : pick(numbers, &g))")
        }
        if chance(0.2, &g) { fields.append("\"sig\":\(anyValue(&g))") }
        fields.shuffle(using: &g)
        var bytes = Array("{\(fields.joined(separator: ","))}".utf8)
        mangle(&bytes, &g)
        return bytes
    }

    /// Sometimes flips, drops, inserts or truncates bytes; rarely replaces everything with noise.
    static func mangle(_ bytes: inout [UInt8], _ g: inout Generator) {
        if chance(0.05, &g) {
            bytes = (0..<Int.random(in: 0...300, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            return
        }
        guard chance(0.25, &g), !bytes.isEmpty else { return }
        for _ in 0..<Int.random(in: 1...4, using: &g) where !bytes.isEmpty {
            let i = Int.random(in: 0..<bytes.count, using: &g)
            switch Int.random(in: 0..<4, using: &g) {
            case 0: bytes[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &g))
            case 1: bytes.remove(at: i)
            case 2: bytes.insert(UInt8.random(in: 0...255, using: &g), at: i)
            default: bytes.removeLast(bytes.count - i)
            }
        }
    }

    @Test func aGatewayFuzzedOverMQTTStaysUpAndStillAnswersAndApplies() async throws {
        let seed = Self.seed
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url) { c in
            c.maxConcurrentRequests = 4
            c.maxWaitingRequests = 16
        }
        try await gw.start()
        let fuzzer = try await Requester(broker: broker, clientID: "fuzzer")
        let watcher = try await Requester(broker: broker, subscribe: ["outpost/#", "fleets/#"])
        let hostileReplies = HostileRequestTests.hostileReplyTopics().map(\.0)
        let replyTopics = hostileReplies + ["fuzz/replies/a", "fuzz/replies/b"]
        var g = Generator(seed: seed)
        let started = Date()
        var sent = (requests: 0, hostileReplyTopics: 0, invalidations: 0, watermarks: 0)
        for i in 0..<Self.count {
            guard Date().timeIntervalSince(started) < 20 else { break }
            switch Int.random(in: 0..<10, using: &g) {
            case 0..<6:
                let topic = Self.chance(0.5, &g) ? "outpost/site/req" : "outpost/site/gw/gw1/req"
                let response: String? = Self.chance(0.7, &g) ? Self.pick(replyTopics, &g) : nil
                let payload = Self.request(&g, replyTopics: replyTopics)
                if let response, hostileReplies.contains(response) { sent.hostileReplyTopics += 1 }
                try fuzzer.client.publishKeepingQueued(MQTTMessage(
                    topic: topic, payload: payload, qos: 1, responseTopic: response,
                    correlationData: Self.chance(0.7, &g) ? (0..<Int.random(in: 0...8, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) } : nil,
                    messageExpiryInterval: Self.chance(0.2, &g) ? UInt32.random(in: 1...3, using: &g) : nil))
                sent.requests += 1
            case 6..<9:
                try fuzzer.client.publishKeepingQueued(MQTTMessage(topic: "outpost/site/cache/invalidate",
                                                                   payload: Self.invalidation(&g), qos: 1))
                sent.invalidations += 1
            default:
                let id = Self.pick(["peer-0", "peer-1", "gw1", "x/y", "+"], &g)
                var bytes = Array("{\"origin\":\"\(id)\",\"epoch\":\"e\(g.next() % 3)\",\"seq\":\(Self.pick(Self.numbers, &g))}".utf8)
                Self.mangle(&bytes, &g)
                let topic = id.contains("/") || id == "+" ? "outpost/site/cache/watermark/peer-2" : "outpost/site/cache/watermark/\(id)"
                try fuzzer.client.publishKeepingQueued(MQTTMessage(topic: topic, payload: bytes, qos: 1, retain: Self.chance(0.3, &g)))
                sent.watermarks += 1
            }
            if i % 50 == 49 { try await Task.sleep(for: .milliseconds(20)) }  // let the broker's queue for us drain
        }
        let context = "seed \(seed), sent \(sent) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"

        // Still there: a real request is answered...
        let r = try await Requester(broker: broker)
        try r.send("outpost/site/req", Requester.chat("after the storm"), correlation: [1])
        try await eventually("a real request answered (\(context))") { r.finals().contains { Requester.content($0) == "echo: after the storm" } }
        #expect(gw.peer?.brokerState == "connected", "\(context)")
        // ... and a real invalidation is applied (stamped after the fill, from a peer it never heard of).
        let key = EchoService.key(try #require(try gw.service.lastQuery(content: "after the storm")))
        if case .fresh = gw.cache.lookup(key) {} else { Issue.record("the answer was not cached (\(context))") }
        let applied = gw.stat("invalidations_applied")
        let real = InvalidationMessage(origin: "fuzz-final", tombstone: Tombstone(scope: .key(key), hlc: gw.cache.clock.tick()))
        try fuzzer.client.publishKeepingQueued(MQTTMessage(topic: "outpost/site/cache/invalidate", payload: real.encoded(), qos: 1))
        try await eventually("the real invalidation applied (\(context))") { gw.stat("invalidations_applied") == applied + 1 }
        if case .miss = gw.cache.lookup(key) {} else { Issue.record("the invalidated answer is still served (\(context))") }

        // No reply anywhere in the fleet's topics, nor another fleet's.
        try await Task.sleep(for: .milliseconds(200))
        let misplaced = watcher.inbox.messages.withLock { $0 }.filter(HostileRequestTests.isReply)
        #expect(misplaced.isEmpty, "replies on \(Set(misplaced.map(\.topic))) (\(context))")
        #expect(gw.stat("events_dropped") == 0, "\(context)")
        #expect(gw.stat("requests") >= sent.requests, "\(context)")
        print("fuzz: \(context); requests refused for their reply topic \(gw.stat("reply_topics_refused")), "
              + "replies under control topics \(misplaced.count), invalidations applied \(gw.stat("invalidations_applied")) "
              + "rejected \(gw.stat("invalidations_rejected")), gaps \(gw.stat("gaps")), watermarks rejected \(gw.stat("watermarks_rejected"))")
        await gw.stop()
    }
}

extension EchoService {
    /// The query last asked with this text, rebuilt from the cache key's inputs (the service does not keep queries).
    func lastQuery(content: String) throws -> Query? {
        let request = try CompletionRequest.parse(object: ["messages": .array([.object(["role": .string("user"), "content": .string(content)])])],
                                                  kind: .chat, defaults: SamplingParameters())
        return request.query
    }
}
