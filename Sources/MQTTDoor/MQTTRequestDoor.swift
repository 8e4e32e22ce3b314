import Dispatch
import FoundationEssentials
import OutpostCore
import Synchronization
import MQTT

/// The MQTT front door for requests (the twin of `LocalAPI`'s HTTP one). The owner of the
/// gateway's MQTT connection (PeerSync) subscribes to `…/req` (shared subscription) and
/// `…/gw/<id>/req` and hands it their messages; for each it
/// 1. parses and admits (`accept`, on the task reading MQTT events): v5 Message Expiry, the reply
///    address (the v5 Response Topic, else the payload's `reply_to`, as `ReplyTopicPolicy`
///    allows), size, JSON, QoS 1 redeliveries (`RedeliveryFilter`), the request's fields, and the
///    concurrency and waiting limits;
/// 2. waits for one of the `maxConcurrentRequests` slots (`acquireSlot`), in a task of its own;
/// 3. answers through the `QueryAnswering` service, racing the request's expiry (`serve`);
/// 4. replies: streamed chunks then the final message, or an error reply (`MQTTRequestDoor+Replies`).
///
/// Never throws: every failure is a reply or a counter (`Counter`, reported by `statistics()`),
/// and what an operator should see (refused reply topics, expired requests) is a rate-limited
/// `MQTTRequestNotice` handed to the host.
public final class MQTTRequestDoor: MQTTRequestHandler {
    /// Where and how to answer one request.
    struct ReplyAddress: Sendable {
        let topic: String
        /// v5 Correlation Data, copied into every reply.
        let correlation: [UInt8]?
        /// The request's `id` (v3.1.1 clients match replies by it), echoed in every reply.
        let requestID: JSONValue?
        /// When the request's v5 Message Expiry runs out (nil: never). Replies carry what is left
        /// of it as their own expiry, so a reply nobody waits for any more is not kept either.
        var deadline: ContinuousClock.Instant? = nil
    }

    /// A request message that parsed, with somewhere to reply.
    struct Incoming {
        let object: [String: JSONValue]
        let address: ReplyAddress
    }

    struct State: Sendable {
        var redeliveries: RedeliveryFilter
        /// Requests being answered (at most `maxConcurrentRequests`).
        var activeRequests = 0
        /// Requests admitted but not yet waiting for a slot, and those waiting (FIFO).
        var reserved = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Numbers the completion ids (`chatcmpl-<gateway>-<n>`).
        var completionCounter = 0
        var limiter = LogRateLimiter()
        var counters: [Counter: Int] = [:]
    }

    /// Request identities remembered for recognising redeliveries.
    static let redeliveryCapacity = 4096

    let configuration: Configuration
    /// This gateway's id (in completion ids).
    let gateway: String
    let service: any QueryAnswering
    let replyPolicy: ReplyTopicPolicy
    let host: MQTTRequestHost
    let state: Mutex<State>

    /// A door answering through `service`, on `host`'s connection, under `host.topics`
    /// (`configuration` is assumed valid: see `Configuration.validate()` and `factory`).
    public init(configuration: Configuration, service: any QueryAnswering, host: MQTTRequestHost) {
        self.configuration = configuration
        self.service = service
        self.host = host
        gateway = host.topics.gateway
        replyPolicy = ReplyTopicPolicy(topics: host.topics)
        let window = configuration.redeliveryWindowSeconds
        let windowNanos = UInt64(max(window.isFinite ? window : 0, 0) * 1e9)
        state = Mutex(State(redeliveries: RedeliveryFilter(windowNanos: windowNanos, capacity: Self.redeliveryCapacity)))
    }

    func count(_ counter: Counter) {
        state.withLock { $0.counters[counter, default: 0] += 1 }
    }

    /// Counters by name (see `Counter.name`) and the totals of the refusal and expiry families
    /// (`reply_topics_refused`, `requests_expired`). Counters still at zero are left out.
    public func statistics() -> [String: Int] {
        var out: [String: Int] = [:]
        for (counter, n) in state.withLock({ $0.counters }) {
            out[counter.name, default: 0] += n
            if let total = counter.total { out[total, default: 0] += n }
        }
        return out
    }

    /// One counter.
    public func count(of counter: Counter) -> Int {
        state.withLock { $0.counters[counter] ?? 0 }
    }

    /// Hands a notice to the host if its kind is under the rate limit (`build` gets how many of
    /// the kind were held back since the last one let through).
    func notice(limit kind: String, _ build: (Int) -> MQTTRequestNotice) {
        let now = DispatchTime.now().uptimeNanoseconds
        guard let held = state.withLock({ $0.limiter.admit(kind, now: now) }) else { return }
        host.notice(build(held))
    }

    // MARK: Parse and admit

    /// Validates a request message and starts answering it in `group`, or replies with an error
    /// when there is somewhere to reply.
    public func accept(_ m: MQTTMessage, in group: inout DiscardingTaskGroup) {
        count(.requests)
        let received = ContinuousClock.now
        let deadline = m.messageExpiryInterval.map { received + .seconds(Int64($0)) }
        // An expiry of 0 left: the broker (or the requester) says nobody waits for it any more.
        if let deadline, deadline <= received {
            expired(.beforeStart, overdue: .zero)
            return
        }
        guard let incoming = parse(m, deadline: deadline), !isRedelivery(m, to: incoming.address),
              let request = completionRequest(incoming), reservePlace(replyingTo: incoming.address)
        else { return }
        group.addTask { [self] in
            await acquireSlot()
            await serve(request, to: incoming.address)
            releaseSlot()
        }
    }

    /// The request's JSON object and where to reply, or nil when it was refused or has nowhere
    /// acceptable to reply (counted; an error reply went out if there was somewhere to reply).
    private func parse(_ m: MQTTMessage, deadline: ContinuousClock.Instant?) -> Incoming? {
        // The v5 Response Topic, when given, is the only reply address considered: one that is
        // refused does not fall back to the payload's `reply_to`.
        var replyTopic: String?
        if m.responseTopic != nil || m.responseTopicMalformed {
            guard let topic = allowedReplyTopic(m.responseTopic, request: m.topic) else { return nil }
            replyTopic = topic
        }
        guard let object = decode(m, replyTopic: replyTopic, deadline: deadline) else { return nil }
        // v3.1.1 clients (and v5 ones without a Response Topic) say where to reply in the payload.
        if replyTopic == nil, case .string(let r)? = object["reply_to"] {
            guard let topic = allowedReplyTopic(r, request: m.topic) else { return nil }
            replyTopic = topic
        }
        var requestID: JSONValue?
        switch object["id"] {
        case .string(let s) where s.utf8.count <= 1024: requestID = .string(s)
        case .number(let d) where d.isFinite: requestID = .number(d)
        default: requestID = nil
        }
        guard let replyTopic else {
            count(.requestsUnanswerable)
            return nil
        }
        return Incoming(object: object, address: ReplyAddress(topic: replyTopic, correlation: m.correlationData,
                                                              requestID: requestID, deadline: deadline))
    }

    /// `topic` if the policy lets replies go there (nil: the topic was malformed); else nil, refused.
    private func allowedReplyTopic(_ topic: String?, request: String) -> String? {
        guard let topic else {
            refuse(.malformed, replyTopic: "", request: request)
            return nil
        }
        if let why = replyPolicy.check(topic) {
            refuse(why, replyTopic: topic, request: request)
            return nil
        }
        return topic
    }

    /// The payload as a JSON object, or nil when it is too large or not one (refused, with an
    /// error reply to `replyTopic` when there is one).
    private func decode(_ m: MQTTMessage, replyTopic: String?, deadline: ContinuousClock.Instant?) -> [String: JSONValue]? {
        func refused(_ type: String, _ message: String) -> [String: JSONValue]? {
            count(.requestsRefused)
            if let replyTopic {
                reply(error: type, message,
                      to: ReplyAddress(topic: replyTopic, correlation: m.correlationData, requestID: nil, deadline: deadline))
            } else {
                count(.requestsUnanswerable)
            }
            return nil
        }
        guard m.payload.count <= configuration.maxPayloadBytes else {
            return refused("payload_too_large",
                           "the request is \(m.payload.count) bytes; at most \(configuration.maxPayloadBytes) are accepted")
        }
        do {
            guard case .object(let o) = try JSONValue.parse(Data(m.payload)) else {
                throw QueryError.malformed("the request must be a JSON object")
            }
            return o
        } catch {
            return refused("invalid_request_error", "\(error)")
        }
    }

    /// Whether `m` is a QoS 1 redelivery of a request answered already (counted). A redelivery
    /// carries the same reply address, correlation (or id) and payload, and comes soon after the
    /// first delivery: answer once. A different question under the same correlation data, or the
    /// same one asked again later, is answered.
    private func isRedelivery(_ m: MQTTMessage, to address: ReplyAddress) -> Bool {
        guard m.correlationData != nil || address.requestID != nil else { return false }
        let identity = RedeliveryFilter.Identity(
            replyTopic: address.topic,
            correlation: (m.correlationData ?? []) + [0xFF] + (address.requestID.map { $0.encoded() } ?? []),
            payloadDigest: SHA256.hash(m.payload))
        let now = host.connectedClock()
        guard state.withLock({ $0.redeliveries.admit(identity, now: now) }) else {
            count(.requestsDuplicate)
            return true
        }
        return false
    }

    /// The request's fields, or nil when they are invalid (refused with an error reply).
    private func completionRequest(_ incoming: Incoming) -> CompletionRequest? {
        do {
            return try CompletionRequest.parse(object: incoming.object, kind: .chat,
                                               defaults: service.samplingDefaults ?? configuration.samplingDefaults)
        } catch {
            count(.requestsRefused)
            reply(error: "invalid_request_error", error.message, param: error.field, to: incoming.address)
            return nil
        }
    }

    /// Reserves a place in line, or refuses with a "busy" error reply when as many requests as
    /// allowed are being answered and waiting (or the host is shutting down).
    private func reservePlace(replyingTo address: ReplyAddress) -> Bool {
        let shuttingDown = host.isShuttingDown()
        let admitted = state.withLock { s -> Bool in
            guard !shuttingDown,
                  s.activeRequests + s.waiters.count + s.reserved < configuration.maxConcurrentRequests + configuration.maxWaitingRequests
            else { return false }
            s.reserved += 1
            return true
        }
        guard admitted else {
            count(.requestsBusy)
            reply(error: "server_busy", "too many requests in progress; retry shortly", to: address, retryAfter: 1)
            return false
        }
        return true
    }

    /// A request whose reply topic the policy refuses: not answered (an error reply would go to
    /// the same place), counted, and logged within the rate limit.
    private func refuse(_ why: ReplyTopicPolicy.Refusal, replyTopic: String, request topic: String) {
        count(.replyTopicRefused(why))
        count(.requestsUnanswerable)
        notice(limit: "reply_topic_refused") { held in
            .replyTopicRefused(why, topic: LogRateLimiter.printable(replyTopic), requestTopic: LogRateLimiter.printable(topic),
                               suppressed: held)
        }
    }

    /// A request whose expiry passed: counted, logged within the rate limit.
    func expired(_ when: RequestExpiry, overdue: Duration) {
        count(.requestExpired(when))
        let millis = overdue.components.seconds * 1000 + overdue.components.attoseconds / 1_000_000_000_000_000
        notice(limit: "request_expired_\(when.rawValue)") { held in .requestExpired(when, overdueMillis: millis, suppressed: held) }
    }

    // MARK: Slots

    /// Waits for one of the `maxConcurrentRequests` slots (the caller reserved a place in line).
    private func acquireSlot() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                s.reserved -= 1
                if s.activeRequests < configuration.maxConcurrentRequests {
                    s.activeRequests += 1
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Hands the slot to the next waiter, or frees it.
    private func releaseSlot() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.activeRequests -= 1
            return nil
        }
        next?.resume()
    }
}
