import AnswerCache
import Foundation
import OutpostCore
import OutpostTesting
import Synchronization
import Testing
@testable import PeerSync
@testable import MQTT
@testable import MQTTDoor

/// Issue 17, the MQTT request side, against a real `mosquitto`: reply topics aimed at the fleet's
/// control topics (or not topics at all) get nothing published, a different question under the
/// same correlation data is answered, a redelivery is answered once, and a v5 request whose
/// Message Expiry passes is dropped, its answer cancelled and not cached.
@Suite(.serialized) struct HostileRequestTests {
    /// Every reply topic a request tries, and why it must be refused.
    static func hostileReplyTopics(root: String = "outpost/site", gateway: String = "gw1") -> [(String, ReplyTopicPolicy.Refusal)] {
        [
            ("\(root)/config", .fleetTopic), ("\(root)/gw/\(gateway)/config", .fleetTopic),
            ("\(root)/cache/invalidate", .fleetTopic), ("\(root)/gw/\(gateway)/status", .fleetTopic),
            ("\(root)/cache/watermark/\(gateway)", .fleetTopic), ("\(root)/cache/watermark/gw2", .fleetTopic),
            ("\(root)/req", .fleetTopic), ("\(root)/gw/\(gateway)/req", .fleetTopic), ("\(root)/gw/gw2/status", .fleetTopic),
            ("\(root)/replies/x", .fleetTopic),
            ("outpost/other/config", .controlTopic), ("outpost/other/gw/gwx/status", .controlTopic),
            ("fleets/b/cache/invalidate", .controlTopic), ("fleets/b/cache/watermark/gwx", .controlTopic),
            ("replies/+", .wildcard), ("replies/#", .wildcard), ("#", .wildcard), ("+/x", .wildcard),
            ("$SYS/broker/x", .system), ("$share/g/replies/x", .system),
        ]
    }

    /// A reply as a gateway writes it (requests never carry `done`, `choices` or `completion_id`).
    static func isReply(_ m: MQTTMessage) -> Bool {
        guard let o = Requester.json(m.payload) else { return false }
        return o["done"] != nil || o["choices"] != nil || o["completion_id"] != nil
    }

    @Test func repliesAimedAtControlTopicsAreRefusedAndNothingIsPublishedThere() async throws {
        let broker = try MosquittoBroker()
        let configs = Mutex<[ConfigDelivery]>([])
        let gw = try TestGateway(id: "gw1", broker: broker.url) { c in
            c.onConfig = { d in configs.withLock { $0.append(d) } }
        }
        try await gw.start()
        let r = try await Requester(broker: broker)
        let watcher = try await Requester(broker: broker, subscribe: ["#"])
        try await eventually("retained status") { !watcher.replies(on: "outpost/site/gw/gw1/status").isEmpty }
        let statusBefore = try #require(Requester.json(watcher.replies(on: "outpost/site/gw/gw1/status").last!.payload))

        var tried: [ReplyTopicPolicy.Refusal: Int] = [:]
        for (i, (topic, why)) in Self.hostileReplyTopics().enumerated() {
            // v5: the Response Topic property; v3.1.1 style: reply_to in the payload.
            try r.client.publishKeepingQueued(MQTTMessage(
                topic: i % 2 == 0 ? "outpost/site/req" : "outpost/site/gw/gw1/req", payload: Requester.chat("v5 \(i)"),
                responseTopic: topic, correlationData: [UInt8(i)]))
            try r.send("outpost/site/gw/gw1/req", Requester.chat("v3 \(i)", extra: ["reply_to": topic, "id": "q\(i)"]), v5Reply: false)
            tried[why, default: 0] += 2
        }
        // Not topic names at all (only a payload can carry these).
        for (topic, why) in [("", ReplyTopicPolicy.Refusal.empty), ("replies/a\u{1}b", .malformed),
                             (String(repeating: "r", count: 5000), .oversized)] {
            try r.send("outpost/site/req", Requester.chat("bad", extra: ["reply_to": topic]), v5Reply: false)
            tried[why, default: 0] += 1
        }
        // A refused v5 Response Topic does not fall back to a payload reply_to either.
        try r.client.publishKeepingQueued(MQTTMessage(
            topic: "outpost/site/req", payload: Requester.chat("both", extra: ["reply_to": r.replyTopic]),
            responseTopic: "outpost/site/config", correlationData: [99]))
        tried[.fleetTopic, default: 0] += 1
        // Even a payload the gateway cannot read: the error reply would go to the same place.
        try r.client.publishKeepingQueued(MQTTMessage(topic: "outpost/site/req", payload: Array("not json".utf8),
                                                      responseTopic: "outpost/site/cache/invalidate", correlationData: [98]))
        tried[.fleetTopic, default: 0] += 1
        let total = tried.values.reduce(0, +)

        // A good request after them all is answered (so every one before it was handled).
        try r.send("outpost/site/gw/gw1/req", Requester.chat("still answering"), correlation: [7])
        try await eventually("the good request answered") { r.finals().contains { Requester.content($0) == "echo: still answering" } }
        try await eventually("all refusals counted") { gw.stat("reply_topics_refused") == total }
        try await Task.sleep(for: .milliseconds(300))

        let misplaced = watcher.inbox.messages.withLock { $0 }.filter { $0.topic != r.replyTopic && Self.isReply($0) }
        #expect(misplaced.isEmpty, "replies published on \(misplaced.map(\.topic))")
        #expect(r.replies().count == 1)  // only the good request's answer reached the requester
        for (why, n) in tried { #expect(gw.stat(PeerSync.Counter.request(.replyTopicRefused(why)).name) == n, "\(why)") }
        #expect(gw.stat("requests_unanswerable") == total)
        #expect(configs.withLock { $0 }.isEmpty)  // nothing reached the config handler
        #expect(gw.service.calls.withLock { $0 } == 1)  // nothing was generated for a refused request
        // The retained status is the gateway's own, unchanged but for its clock.
        let after = try await Requester(broker: broker, subscribe: ["outpost/site/gw/gw1/status"])
        try await eventually("retained status") { !after.replies(on: "outpost/site/gw/gw1/status").isEmpty }
        let statusAfter = try #require(Requester.json(after.replies(on: "outpost/site/gw/gw1/status")[0].payload))
        for key in ["state", "gateway", "fleet", "model", "model_fingerprint", "kernel", "config_version"] {
            #expect("\(statusAfter[key] ?? "nil")" == "\(statusBefore[key] ?? "nil")", "\(key)")
        }
        #expect(statusAfter["config"] is NSNull && statusAfter["choices"] == nil && statusAfter["error"] == nil)
        await gw.stop()
    }

    @Test func differentQuestionsUnderTheSameCorrelationAreAllAnswered() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        // v5: one correlation datum, two questions.
        let r5 = try await Requester(broker: broker)
        try r5.send("outpost/site/req", Requester.chat("first question"), correlation: [1])
        try r5.send("outpost/site/req", Requester.chat("second question"), correlation: [1])
        // The README's v3.1.1 example run twice, with two questions and the same id.
        let r3 = try await Requester(broker: broker, version: .v311, replyTopic: "replies/me")
        for q in ["When does the depot open?", "When does the depot close?"] {
            try r3.send("outpost/site/gw/gw1/req", Requester.chat(q, extra: ["reply_to": "replies/me", "id": "q1"]), v5Reply: false)
        }
        try await eventually("all four answered") { r5.finals().count == 2 && r3.finals().count == 2 }
        #expect(Set(r5.finals().compactMap(Requester.content)) == ["echo: first question", "echo: second question"])
        #expect(Set(r3.finals().compactMap(Requester.content)) == ["echo: When does the depot open?", "echo: When does the depot close?"])
        #expect(r3.finals().allSatisfy { $0["id"] as? String == "q1" })
        #expect(gw.stat("requests_duplicate") == 0)
        await gw.stop()
    }

    @Test func aRedeliveryIsAnsweredOnceAndTheSameRequestAfterTheWindowAgain() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url) { $0.redeliveryWindowSeconds = 1 }
        try await gw.start()
        let r = try await Requester(broker: broker)
        let v3 = Requester.chat("once", extra: ["reply_to": r.replyTopic, "id": 17])
        for _ in 0..<3 {
            try r.send("outpost/site/gw/gw1/req", Requester.chat("once"), correlation: [5, 5])
            try r.send("outpost/site/gw/gw1/req", v3, v5Reply: false)
        }
        try await eventually("duplicates seen") { gw.stat("requests_duplicate") == 4 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(r.finals().count == 2)
        // After the window (of connected time), the same request is a new one.
        try await Task.sleep(for: .milliseconds(1_000))
        try r.send("outpost/site/gw/gw1/req", Requester.chat("once"), correlation: [5, 5])
        try await eventually("answered again") { r.finals().count == 3 }
        #expect(gw.stat("requests_duplicate") == 4)
        await gw.stop()
    }

    @Test func aRequestThatExpiresWhileWaitingIsDroppedUnanswered() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url, delay: .milliseconds(1_500)) { $0.maxConcurrentRequests = 1 }
        try await gw.start()
        let r = try await Requester(broker: broker)
        try r.send("outpost/site/req", Requester.chat("slow one"), correlation: [1])
        try await Task.sleep(for: .milliseconds(100))
        try r.client.publishKeepingQueued(MQTTMessage(topic: "outpost/site/req", payload: Requester.chat("impatient"),
                                                      responseTopic: r.replyTopic, correlationData: [2], messageExpiryInterval: 1))
        try await eventually("expired before it started") { gw.stat("requests_expired_before_start") == 1 }
        try await eventually("the slow one answered") { r.finals().count == 1 }
        try await Task.sleep(for: .milliseconds(300))
        #expect(r.replies().allSatisfy { $0.correlationData == [1] })
        #expect(gw.service.calls.withLock { $0 } == 1)  // the expired one never reached the service
        #expect(gw.stat("requests_expired") == 1)
        await gw.stop()
    }

    @Test func aRequestThatExpiresWhileAnsweredIsCancelledAndNotCached() async throws {
        let broker = try MosquittoBroker()
        let dir = try TemporaryDirectory(prefix: "outpost-gw-expiry")
        let gw = try TestGateway(id: "gw1", broker: broker.url, directory: dir)
        let slow = StepService(cache: gw.cache, steps: 80, step: .milliseconds(50))
        let peer = try PeerSync(configuration: gw.configuration, service: slow, target: gw.cache, log: gw.outbox)
        let notices = NoticeLog(peer)
        let task = Task { try await peer.run() }
        try await eventually("connected") { peer.brokerState == "connected" }
        try await Task.sleep(for: .milliseconds(100))
        let r = try await Requester(broker: broker)

        // Streamed, 80 steps of 50 ms, but the requester waits 2 s at most (the broker passes on
        // the whole seconds left, so the gateway sees 1 to 2 s).
        let sent = Date()
        try r.client.publishKeepingQueued(MQTTMessage(
            topic: "outpost/site/req", payload: Requester.chat("a long story", extra: ["stream": true]),
            responseTopic: r.replyTopic, correlationData: [3], messageExpiryInterval: 2))
        try await eventually("expired while answered") { peer.count(of: .requestExpired(.whileAnswering)) == 1 }
        let cancelledAt = try #require(slow.cancelledAfter.withLock { $0 })
        let chunksAtExpiry = r.replies().count
        try await Task.sleep(for: .milliseconds(500))
        #expect(r.replies().count == chunksAtExpiry)  // nothing more after the expiry
        #expect(chunksAtExpiry > 0 && chunksAtExpiry < 45)
        #expect(r.finals().isEmpty)
        #expect(slow.completed.withLock { $0 } == 0)
        // Stopped within a step or two of the deadline.
        #expect(cancelledAt < 2.3, "generation ran \(cancelledAt) s")
        #expect(Date().timeIntervalSince(sent) < 4)
        // The partial answer is not in the cache.
        if case .miss = gw.cache.lookup(StepService.key(slow.lastQuery.withLock { $0 }!)) {} else {
            Issue.record("a cancelled answer was cached")
        }
        let expired = notices.all().compactMap { n -> Int64? in
            if case .requestExpired(.whileAnswering, let overdue, _) = n { overdue } else { nil }
        }
        #expect(expired.count == 1 && expired[0] < 500, "\(expired)")

        // A request with time to spare is answered, and its reply expires no later than it would have.
        slow.steps.withLock { $0 = 3 }
        try r.client.publishKeepingQueued(MQTTMessage(
            topic: "outpost/site/req", payload: Requester.chat("short"),
            responseTopic: r.replyTopic, correlationData: [4], messageExpiryInterval: 30))
        try await eventually("answered in time") { r.finals().count == 1 }
        let final = try #require(r.replies().last)
        #expect(final.correlationData == [4])
        let left = try #require(final.messageExpiryInterval)
        #expect(left >= 1 && left <= 30)
        task.cancel()
        _ = try? await task.value
    }
}

/// Collects a PeerSync's notices.
final class NoticeLog: Sendable {
    final class Store: Sendable {
        let notices = Mutex<[PeerSync.Notice]>([])
    }

    let store = Store()
    private let task: Task<Void, Never>

    init(_ peer: PeerSync) {
        let store = self.store
        let stream = peer.notices
        task = Task { for await n in stream { store.notices.withLock { $0.append(n) } } }
    }

    deinit { task.cancel() }

    func all() -> [PeerSync.Notice] { store.notices.withLock { $0 } }
}

/// A service that answers in `steps` pieces, `step` apart, checking for cancellation before each
/// (as the model checks between decode steps), and caches the answer only once it is whole.
final class StepService: AnswerService {
    let cache: AnswerCache
    let steps: Mutex<Int>
    let step: Duration
    let cancelledAfter = Mutex<Double?>(nil)
    let completed = Mutex(0)
    let lastQuery = Mutex<Query?>(nil)

    init(cache: AnswerCache, steps: Int, step: Duration) {
        self.cache = cache
        self.steps = Mutex(steps)
        self.step = step
    }

    static func key(_ query: Query) -> CacheKey {
        CacheKey.derive(modelFingerprint: "step-model", chatTemplate: "", query: query)
    }

    func answer(_ query: Query, onPiece: @escaping @Sendable (String) async -> Void) async throws -> AnsweredQuery {
        lastQuery.withLock { $0 = query }
        let start = Date()
        var text = ""
        for i in 0..<steps.withLock({ $0 }) {
            if Task.isCancelled {
                cancelledAfter.withLock { $0 = Date().timeIntervalSince(start) }
                throw CancellationError()
            }
            try? await Task.sleep(for: step)
            text += "w\(i) "
            await onPiece("w\(i) ")
        }
        let answer = Answer(text: text, promptTokens: 3, completionTokens: steps.withLock { $0 })
        cache.fill(Self.key(query), answer: answer, namespace: query.namespace, tags: query.tags)
        completed.withLock { $0 += 1 }
        return AnsweredQuery(answer: answer, cached: false, stale: false, cacheKey: Self.key(query), gateway: "gw1",
                             kernel: "test", timings: Timings())
    }

    var modelName: String { "step" }

    func health() async -> HealthReport {
        HealthReport(ready: true, modelLoaded: true, modelFingerprint: "step-model", kernel: "test", configVersion: 1,
                     broker: "", gateway: "gw1", uptimeSeconds: 1)
    }

    func cacheStatistics() async -> [String: Int] { cache.stats().counters }

    func invalidate(_ scope: InvalidationScope) async throws -> InvalidationReceipt {
        InvalidationReceipt(try cache.invalidate(scope))
    }

    func metricsText() async -> String { "" }
}
