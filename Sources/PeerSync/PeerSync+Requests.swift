import FoundationEssentials
import OutpostCore
import Synchronization
import MQTT

extension PeerSync.Core {
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

    /// Validates a request message and starts answering it, or replies with an error when there
    /// is somewhere to reply. Never throws: every failure is a reply or a counter.
    func accept(_ m: MQTTMessage, in group: inout DiscardingTaskGroup) {
        count(.requests)
        let received = ContinuousClock.now
        let deadline = m.messageExpiryInterval.map { received + .seconds(Int64($0)) }
        // An expiry of 0 left: the broker (or the requester) says nobody waits for it any more.
        if let deadline, deadline <= received {
            expired(.beforeStart, overdue: .zero)
            return
        }
        // The v5 Response Topic, when given, is the only reply address considered: one that is
        // refused does not fall back to the payload's `reply_to`.
        var replyTopic: String?
        if m.responseTopic != nil || m.responseTopicMalformed {
            guard let topic = m.responseTopic else {
                refuse(.malformed, replyTopic: "", request: m.topic)
                return
            }
            if let why = replyPolicy.check(topic) {
                refuse(why, replyTopic: topic, request: m.topic)
                return
            }
            replyTopic = topic
        }
        guard m.payload.count <= configuration.maxPayloadBytes else {
            count(.requestsRefused)
            if let replyTopic {
                reply(error: "payload_too_large",
                      "the request is \(m.payload.count) bytes; at most \(configuration.maxPayloadBytes) are accepted",
                      to: ReplyAddress(topic: replyTopic, correlation: m.correlationData, requestID: nil, deadline: deadline))
            } else {
                count(.requestsUnanswerable)
            }
            return
        }
        let object: [String: JSONValue]
        do {
            guard case .object(let o) = try JSONValue.parse(Data(m.payload)) else {
                throw QueryError.malformed("the request must be a JSON object")
            }
            object = o
        } catch {
            count(.requestsRefused)
            if let replyTopic {
                reply(error: "invalid_request_error", "\(error)",
                      to: ReplyAddress(topic: replyTopic, correlation: m.correlationData, requestID: nil, deadline: deadline))
            } else {
                count(.requestsUnanswerable)
            }
            return
        }
        // v3.1.1 clients (and v5 ones without a Response Topic) say where to reply in the payload.
        if replyTopic == nil, case .string(let r)? = object["reply_to"] {
            if let why = replyPolicy.check(r) {
                refuse(why, replyTopic: r, request: m.topic)
                return
            }
            replyTopic = r
        }
        var requestID: JSONValue?
        switch object["id"] {
        case .string(let s) where s.utf8.count <= 1024: requestID = .string(s)
        case .number(let d) where d.isFinite: requestID = .number(d)
        default: requestID = nil
        }
        guard let replyTopic else {
            count(.requestsUnanswerable)
            return
        }
        let address = ReplyAddress(topic: replyTopic, correlation: m.correlationData, requestID: requestID, deadline: deadline)

        // A QoS 1 redelivery carries the same reply address, correlation (or id) and payload, and
        // comes soon after the first delivery: answer once. A different question under the same
        // correlation data, or the same one asked again later, is answered.
        if m.correlationData != nil || requestID != nil {
            let identity = RedeliveryFilter.Identity(
                replyTopic: replyTopic,
                correlation: (m.correlationData ?? []) + [0xFF] + (requestID.map { $0.encoded() } ?? []),
                payloadDigest: SHA256.hash(m.payload))
            let now = Self.nowNanos()
            guard state.withLock({ $0.redeliveries.admit(identity, now: $0.link.connectedClock(now: now)) }) else {
                count(.requestsDuplicate)
                return
            }
        }

        let request: CompletionRequest
        do {
            request = try CompletionRequest.parse(object: object, kind: .chat, defaults: service.samplingDefaults ?? configuration.samplingDefaults)
        } catch {
            count(.requestsRefused)
            reply(error: "invalid_request_error", error.message, param: error.field, to: address)
            return
        }
        let admitted = state.withLock { s -> Bool in
            guard !s.shuttingDown,
                  s.activeRequests + s.waiters.count + s.reserved < configuration.maxConcurrentRequests + configuration.maxWaitingRequests
            else { return false }
            s.reserved += 1
            return true
        }
        guard admitted else {
            count(.requestsBusy)
            reply(error: "server_busy", "too many requests in progress; retry shortly", to: address, retryAfter: 1)
            return
        }
        group.addTask { [self] in
            await acquireSlot()
            await serve(request, to: address)
            releaseSlot()
        }
    }

    /// A request whose reply topic the policy refuses: not answered (an error reply would go to
    /// the same place), counted, and logged within the rate limit.
    private func refuse(_ why: ReplyTopicPolicy.Refusal, replyTopic: String, request topic: String) {
        count(.replyTopicRefused(why))
        count(.requestsUnanswerable)
        notice(limit: "reply_topic_refused") { held in
            .replyTopicRefused(why, topic: Self.printable(replyTopic), requestTopic: Self.printable(topic), suppressed: held)
        }
    }

    /// A request whose expiry passed: counted, logged within the rate limit.
    private func expired(_ when: PeerSync.Counter.RequestExpiry, overdue: Duration) {
        count(.requestExpired(when))
        let millis = overdue.components.seconds * 1000 + overdue.components.attoseconds / 1_000_000_000_000_000
        notice(limit: "request_expired_\(when.rawValue)") { held in .requestExpired(when, overdueMillis: millis, suppressed: held) }
    }

    /// At most 256 characters of `text`, control characters shown as `?` (it goes into a log line).
    static func printable(_ text: String) -> String {
        var out = String(String.UnicodeScalarView(text.unicodeScalars.prefix(256).map {
            $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? "?" : $0
        }))
        if text.unicodeScalars.count > 256 { out += "…" }
        return out
    }

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

    /// Answers one request, racing its expiry when it has one: if the deadline comes first, the
    /// answer is cancelled (the service stops generating and caches nothing partial), nothing more
    /// is published for it, and it is counted as expired once the service has let go.
    func serve(_ request: CompletionRequest, to address: ReplyAddress) async {
        guard let deadline = address.deadline else {
            await answer(request, to: address, gate: nil)
            return
        }
        let start = ContinuousClock.now
        guard start < deadline else {
            // It waited for a slot past its expiry: dropped before anything was generated.
            expired(.beforeStart, overdue: start - deadline)
            return
        }
        let gate = ExpiryGate()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in await answer(request, to: address, gate: gate) }
            group.addTask {
                do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return }
                _ = gate.expire()
            }
            _ = await group.next()
            group.cancelAll()
        }
        // Counted after the answer task ended: `overdue` is how long the service took to let go.
        if gate.isExpired { expired(.whileAnswering, overdue: ContinuousClock.now - deadline) }
    }

    /// Answers one request: streamed chunks (numbered from 0) then the final message, or just the
    /// final message. With a `gate`, publishes only while it is open (the request has not expired).
    private func answer(_ request: CompletionRequest, to address: ReplyAddress, gate: ExpiryGate?) async {
        let completionID = state.withLock { s -> String in
            s.completionCounter += 1
            return "chatcmpl-\(topics.gateway)-\(s.completionCounter)"
        }
        let sequence = Mutex(0)
        do {
            let stream = request.stream
            let answered = try await service.answer(request.query) { [self] piece in
                guard stream, gate?.isOpen ?? true else { return }
                let seq = sequence.withLock { n -> Int in
                    defer { n += 1 }
                    return n
                }
                publishReply([
                    "object": .string("chat.completion.chunk"),
                    "id": .string(completionID),
                    "seq": .number(Double(seq)),
                    "model": .string(service.modelName),
                    "choices": .array([.object(["index": .number(0), "delta": .object(["content": .string(piece)])])]),
                ], to: address)
            }
            guard gate?.close() ?? true else { return }
            let seq = sequence.withLock { $0 }
            var outpost: [String: JSONValue] = [
                "cached": .bool(answered.cached), "stale": .bool(answered.stale),
                "gateway": .string(answered.gateway), "kernel": .string(answered.kernel),
                "timings": .object([
                    "queue_ms": .number(answered.timings.queueMs), "prompt_ms": .number(answered.timings.promptMs),
                    "generate_ms": .number(answered.timings.generateMs), "total_ms": .number(answered.timings.totalMs),
                ]),
            ]
            if let key = answered.cacheKey { outpost["cache_key"] = .string(key.hex) }
            let a = answered.answer
            publishReply([
                "object": .string("chat.completion"),
                "id": .string(completionID),
                "seq": .number(Double(seq)),
                "done": .bool(true),
                "model": .string(service.modelName),
                "choices": .array([.object([
                    "index": .number(0),
                    "message": .object(["role": .string("assistant"), "content": .string(a.text)]),
                    "finish_reason": .string(a.finishReason.rawValue),
                ])]),
                "usage": .object([
                    "prompt_tokens": .number(Double(a.promptTokens)),
                    "completion_tokens": .number(Double(a.completionTokens)),
                    "total_tokens": .number(Double(a.promptTokens + a.completionTokens)),
                ]),
                "outpost": .object(outpost),
            ], to: address)
            count(.replies)
        } catch {
            // Expired: the error is the cancellation's echo, and nobody waits for a reply.
            guard gate?.close() ?? true else { return }
            failed(error, to: address)
        }
    }

    private func failed(_ error: any Error, to address: ReplyAddress) {
        count(.requestsFailed)
        switch error {
        case let error as ServiceError:
            let type = error.isBusy ? "server_busy" : error.isTooLong ? "context_length_exceeded"
                : error.isShuttingDown ? "server_shutting_down" : "server_error"
            reply(error: type, error.message, to: address, retryAfter: error.retryAfter)
        case let error as QueryError:
            reply(error: "invalid_request_error", error.message, param: error.field, to: address)
        case is CancellationError:
            reply(error: "server_shutting_down", "the gateway is shutting down", to: address)
        default:
            reply(error: "server_error", "\(error)", to: address)
        }
    }

    func reply(error type: String, _ message: String, param: String? = nil, to address: ReplyAddress, retryAfter: Int? = nil) {
        var error: [String: JSONValue] = ["type": .string(type), "message": .string(message)]
        if let param { error["param"] = .string(param) }
        if let retryAfter { error["retry_after"] = .number(Double(retryAfter)) }
        publishReply(["error": .object(error), "done": .bool(true)], to: address)
        count(.errorReplies)
    }

    /// Publishes a reply (QoS 1), with the request's `id` and Correlation Data copied.
    func publishReply(_ body: [String: JSONValue], to address: ReplyAddress) {
        var body = body
        if let id = address.requestID {
            // The v3.1.1 contract: the reply carries the request's id; the completion id moves aside.
            if let own = body["id"] { body["completion_id"] = own }
            body["id"] = id
        }
        guard let c = connection else { return }
        var message = MQTTMessage(topic: address.topic, payload: JSONValue.object(body).encoded(), qos: 1,
                                  correlationData: address.correlation)
        if let deadline = address.deadline {
            // What is left of the request's expiry, rounded up (v5 counts in whole seconds).
            let left = deadline - ContinuousClock.now
            let seconds = max(1, left.components.seconds + (left.components.attoseconds > 0 ? 1 : 0))
            message.messageExpiryInterval = UInt32(clamping: seconds)
        }
        do {
            try c.publish(message)
        } catch {
            count(.publishErrors)
        }
    }
}

/// Whether an answer may still be published: open until the request expires (then nothing more
/// goes out) or its final reply or error is about to go out (then expiry comes too late to matter).
final class ExpiryGate: Sendable {
    private enum State { case open, expired, closed }
    private let state = Mutex(State.open)

    var isOpen: Bool { state.withLock { $0 == .open } }
    var isExpired: Bool { state.withLock { $0 == .expired } }

    /// The deadline passed: true if nothing final had gone out.
    func expire() -> Bool {
        state.withLock { s in
            guard s == .open else { return false }
            s = .expired
            return true
        }
    }

    /// The final reply is about to go out: false if the request expired first.
    func close() -> Bool {
        state.withLock { s in
            guard s == .open else { return false }
            s = .closed
            return true
        }
    }
}
