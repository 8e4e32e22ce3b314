import AnswerCache
import Foundation
import OutpostCore
import OutpostTesting
import Synchronization
import Testing
@testable import PeerSync
@testable import MQTT
@testable import MQTTDoor

/// A stand-in for the agent: answers "echo: <last message>" word by word, through a real
/// `AnswerCache` (hits are answered from it in one piece), and counts what it was asked.
final class EchoService: AnswerService {
    let cache: AnswerCache
    let gateway: String
    let delay: Duration
    let calls = Mutex(0)
    let active = Mutex((now: 0, peak: 0))

    init(cache: AnswerCache, gateway: String, delay: Duration = .zero) {
        self.cache = cache
        self.gateway = gateway
        self.delay = delay
    }

    static func key(_ query: Query) -> CacheKey {
        CacheKey.derive(modelFingerprint: "echo-model", chatTemplate: "", query: query)
    }

    func answer(_ query: Query, onPiece: @escaping @Sendable (String) async -> Void) async throws -> AnsweredQuery {
        calls.withLock { $0 += 1 }
        active.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
        defer { active.withLock { $0.now -= 1 } }
        let key = Self.key(query)
        if query.cacheMode == .use, case .fresh(let a) = cache.lookup(key) {
            await onPiece(a.text)
            return AnsweredQuery(answer: a, cached: true, stale: false, cacheKey: key, gateway: gateway, kernel: "test", timings: Timings())
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        let text = "echo: " + (query.messages.last?.content ?? "")
        for word in text.split(separator: " ", omittingEmptySubsequences: false) { await onPiece(String(word) + " ") }
        let answer = Answer(text: text, promptTokens: 3, completionTokens: 2)
        cache.fill(key, answer: answer, namespace: query.namespace, tags: query.tags)
        return AnsweredQuery(answer: answer, cached: false, stale: false, cacheKey: key, gateway: gateway, kernel: "test", timings: Timings())
    }

    var modelName: String { "echo" }

    func health() async -> HealthReport {
        HealthReport(ready: true, modelLoaded: true, modelFingerprint: "echo-model", kernel: "test", configVersion: 7,
                     broker: "", gateway: gateway, uptimeSeconds: 1)
    }

    func cacheStatistics() async -> [String: Int] {
        cache.stats().counters
    }

    func invalidate(_ scope: InvalidationScope) async throws -> InvalidationReceipt {
        InvalidationReceipt(try cache.invalidate(scope))
    }

    func metricsText() async -> String { "" }
}

/// A gateway's MQTT settings as the agent holds them: PeerSync's and its request door's, set
/// through one value (`$0.onConfig`, `$0.maxConcurrentRequests`).
@dynamicMemberLookup
struct GatewaySettings {
    var peer: PeerSync.Configuration
    var door = MQTTRequestDoor.Configuration()

    subscript<T>(dynamicMember path: WritableKeyPath<PeerSync.Configuration, T>) -> T {
        get { peer[keyPath: path] }
        set { peer[keyPath: path] = newValue }
    }

    subscript<T>(dynamicMember path: WritableKeyPath<MQTTRequestDoor.Configuration, T>) -> T {
        get { door[keyPath: path] }
        set { door[keyPath: path] = newValue }
    }
}

/// One gateway: a cache file, its outbox, the echo service and PeerSync running in a task, with
/// the MQTT request door wired to it as the agent wires it (`configuration.requests`).
final class TestGateway: @unchecked Sendable {
    // @unchecked: `task` is set in start() and read in stop(), both from the test's task.
    let id: String
    let directory: TemporaryDirectory
    let cache: AnswerCache
    let outbox: InvalidationOutbox
    let service: EchoService
    var configuration: PeerSync.Configuration
    private(set) var peer: PeerSync?
    private var task: Task<Void, any Error>?

    init(id: String, broker: String, fleet: String = "site", delay: Duration = .zero, directory: TemporaryDirectory? = nil,
         adjust: (inout GatewaySettings) -> Void = { _ in }) throws {
        self.id = id
        self.directory = try directory ?? TemporaryDirectory(prefix: "outpost-gw-\(id)")
        cache = try AnswerCache(configuration: AnswerCache.Configuration(path: self.directory.file("cache.sqlite").path))
        outbox = try InvalidationOutbox(cache: cache)
        service = EchoService(cache: cache, gateway: id, delay: delay)
        configuration = PeerSync.Configuration(broker: try BrokerURL(broker), fleet: fleet, gatewayID: id)
        configuration.initialBackoffMillis = 50
        configuration.maximumBackoffMillis = 500
        configuration.statusIntervalSeconds = 1
        var settings = GatewaySettings(peer: configuration)
        adjust(&settings)
        configuration = settings.peer
        configuration.requests = try MQTTRequestDoor.factory(settings.door)
    }

    /// Starts PeerSync and waits until it is connected (and subscribed).
    func start(waitConnected: Bool = true) async throws {
        let peer = try PeerSync(configuration: configuration, service: service, target: cache, log: outbox)
        self.peer = peer
        task = Task { try await peer.run() }
        if waitConnected {
            do {
                try await eventually("\(id) connected and subscribed") { peer.brokerState == "connected" && peer.isSubscribed }
            } catch {
                Issue.record("last connect error: \(peer.connection.lastError ?? "none")")
                throw error
            }
            try await Task.sleep(for: .milliseconds(100))  // SUBSCRIBEs reach the broker
        }
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        task = nil
        peer = nil
    }

    /// A local invalidation as the agent makes it: durable in the cache, then announced.
    @discardableResult
    func invalidate(_ scope: InvalidationScope) throws -> Tombstone {
        let t = try cache.invalidate(scope)
        try #require(peer).announce(t)
        return t
    }

    func stat(_ name: String) -> Int { peer?.statistics()[name] ?? 0 }
}

/// Broker configuration that keeps `mosquitto` as the test's own user: started as root, it would
/// switch to the `mosquitto` user and could not write its persistence file or read the test's
/// 0600 keys in the temporary directory.
let brokerAsTestUser = "user \(NSUserName())"

/// Polls `condition` every 10 ms until it holds, failing after `timeout` seconds. Generous by
/// default: the whole package's tests share two cores and one cooperative pool, and a starved
/// poller must not fail a gateway that is fine. The condition is checked once more at the deadline.
func eventually(_ what: String, timeout: Double = 30, _ condition: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    if try condition() { return }
    Issue.record("timed out after \(timeout) s waiting for: \(what)")
    throw CancellationError()
}

/// A plain MQTT client that asks and collects replies.
final class Requester: Sendable {
    final class Inbox: Sendable {
        let messages = Mutex<[MQTTMessage]>([])
    }

    let client: MosquittoClient
    let inbox = Inbox()
    let replyTopic: String
    private let collector: Task<Void, Never>

    init(broker: MosquittoBroker, version: MosquittoClient.ProtocolVersion = .v5, replyTopic: String? = nil,
         subscribe: [String] = [], cleanStart: Bool = true, clientID: String? = nil,
         credentials: (user: String, password: String)? = nil) async throws {
        let id = clientID ?? "req-\(UUID().uuidString.prefix(8))"
        self.replyTopic = replyTopic ?? "replies/\(id)"
        client = try MosquittoClient(clientID: id, cleanStart: cleanStart, protocolVersion: version)
        let inbox = self.inbox
        let events = client.events
        collector = Task {
            for await e in events {
                if case .message(let m) = e { inbox.messages.withLock { $0.append(m) } }
            }
        }
        if let credentials { try client.setCredentials(username: credentials.user, password: credentials.password) }
        try client.startLoop()
        try client.connect(host: "127.0.0.1", port: broker.port, sessionExpiry: cleanStart ? nil : 3600)
        try await Task.sleep(for: .milliseconds(50))
        for t in [self.replyTopic] + subscribe {
            try client.subscribe(t, qos: 1)
        }
        try await Task.sleep(for: .milliseconds(100))
    }

    deinit {
        collector.cancel()
        try? client.disconnect()
        client.stopLoop()
    }

    static func chat(_ text: String, extra: [String: Any] = [:]) -> [UInt8] {
        var o: [String: Any] = ["messages": [["role": "user", "content": text]]]
        for (k, v) in extra { o[k] = v }
        return Array(try! JSONSerialization.data(withJSONObject: o))
    }

    @discardableResult
    func send(_ topic: String, _ payload: [UInt8], correlation: [UInt8]? = nil, v5Reply: Bool = true) throws -> Int32 {
        // Kept by libmosquitto and sent after a reconnect if the broker is away.
        try client.publishKeepingQueued(MQTTMessage(topic: topic, payload: payload, qos: 1,
                                                    responseTopic: v5Reply ? replyTopic : nil, correlationData: correlation))
    }

    func replies(on topic: String? = nil) -> [MQTTMessage] {
        inbox.messages.withLock { $0.filter { $0.topic == (topic ?? replyTopic) } }
    }

    /// The final replies (with `"done": true`), decoded.
    func finals() -> [[String: Any]] {
        replies().compactMap { Self.json($0.payload) }.filter { ($0["done"] as? Bool) == true }
    }

    static func json(_ payload: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any]
    }

    static func content(_ reply: [String: Any]) -> String? {
        guard let choices = reply["choices"] as? [[String: Any]], let message = choices.first?["message"] as? [String: Any]
        else { return nil }
        return message["content"] as? String
    }
}
