import FoundationEssentials
import OutpostCore
import Synchronization

extension PeerSync.Core {
    /// Where and how to answer one request.
    struct ReplyAddress: Sendable {
        let topic: String
        /// v5 Correlation Data, copied into every reply.
        let correlation: [UInt8]?
        /// The request's `id` (v3.1.1 clients match replies by it), echoed in every reply.
        let requestID: JSONValue?
    }

    /// Longest reply topic accepted (an MQTT topic is at most 65535 bytes).
    static let maxReplyTopicBytes = 4096

    static func validReplyTopic(_ topic: String) -> Bool {
        !topic.isEmpty && topic.utf8.count <= maxReplyTopicBytes && !topic.hasPrefix("$")
            && !topic.contains(where: { $0 == "+" || $0 == "#" || $0 == "\u{0}" })
    }

    /// Validates a request message and starts answering it, or replies with an error when there
    /// is somewhere to reply. Never throws: every failure is a reply or a counter.
    func accept(_ m: MQTTMessage, in group: inout DiscardingTaskGroup) {
        count("requests")
        var replyTopic = m.responseTopic.flatMap { Self.validReplyTopic($0) ? $0 : nil }
        guard m.payload.count <= configuration.maxPayloadBytes else {
            count("requests_refused")
            if let replyTopic {
                reply(error: "payload_too_large",
                      "the request is \(m.payload.count) bytes; at most \(configuration.maxPayloadBytes) are accepted",
                      to: ReplyAddress(topic: replyTopic, correlation: m.correlationData, requestID: nil))
            } else {
                count("requests_unanswerable")
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
            count("requests_refused")
            if let replyTopic {
                reply(error: "invalid_request_error", "\(error)",
                      to: ReplyAddress(topic: replyTopic, correlation: m.correlationData, requestID: nil))
            } else {
                count("requests_unanswerable")
            }
            return
        }
        // v3.1.1 clients (and v5 ones without a Response Topic) say where to reply in the payload.
        if replyTopic == nil, case .string(let r)? = object["reply_to"], Self.validReplyTopic(r) {
            replyTopic = r
        }
        var requestID: JSONValue?
        switch object["id"] {
        case .string(let s) where s.utf8.count <= 1024: requestID = .string(s)
        case .number(let d) where d.isFinite: requestID = .number(d)
        default: requestID = nil
        }
        guard let replyTopic else {
            count("requests_unanswerable")
            return
        }
        let address = ReplyAddress(topic: replyTopic, correlation: m.correlationData, requestID: requestID)

        // A QoS 1 redelivery carries the same reply address and correlation (or id): answer once.
        if m.correlationData != nil || requestID != nil {
            let identity = RequestIdentity(
                replyTopic: replyTopic, correlation: (m.correlationData ?? []) + [0xFF] + (requestID.map { $0.encoded() } ?? []))
            guard state.withLock({ $0.seenRequests.insert(identity) }) else {
                count("requests_duplicate")
                return
            }
        }

        let request: CompletionRequest
        do {
            request = try CompletionRequest.parse(object: object, kind: .chat, defaults: service.samplingDefaults ?? configuration.samplingDefaults)
        } catch {
            count("requests_refused")
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
            count("requests_busy")
            reply(error: "server_busy", "too many requests in progress; retry shortly", to: address, retryAfter: 1)
            return
        }
        group.addTask { [self] in
            await acquireSlot()
            await serve(request, to: address)
            releaseSlot()
        }
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

    /// Answers one request: streamed chunks (numbered from 0) then the final message, or just the
    /// final message.
    func serve(_ request: CompletionRequest, to address: ReplyAddress) async {
        let completionID = state.withLock { s -> String in
            s.completionCounter += 1
            return "chatcmpl-\(topics.gateway)-\(s.completionCounter)"
        }
        let sequence = Mutex(0)
        do {
            let stream = request.stream
            let answered = try await service.answer(request.query) { [self] piece in
                guard stream else { return }
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
            count("replies")
        } catch let error as ServiceError {
            count("requests_failed")
            let type = error.isBusy ? "server_busy" : error.isTooLong ? "context_length_exceeded"
                : error.isShuttingDown ? "server_shutting_down" : "server_error"
            reply(error: type, error.message, to: address, retryAfter: error.retryAfter)
        } catch let error as QueryError {
            count("requests_failed")
            reply(error: "invalid_request_error", error.message, param: error.field, to: address)
        } catch is CancellationError {
            count("requests_failed")
            reply(error: "server_shutting_down", "the gateway is shutting down", to: address)
        } catch {
            count("requests_failed")
            reply(error: "server_error", "\(error)", to: address)
        }
    }

    func reply(error type: String, _ message: String, param: String? = nil, to address: ReplyAddress, retryAfter: Int? = nil) {
        var error: [String: JSONValue] = ["type": .string(type), "message": .string(message)]
        if let param { error["param"] = .string(param) }
        if let retryAfter { error["retry_after"] = .number(Double(retryAfter)) }
        publishReply(["error": .object(error), "done": .bool(true)], to: address)
        count("error_replies")
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
        do {
            try c.publish(MQTTMessage(topic: address.topic, payload: JSONValue.object(body).encoded(), qos: 1,
                                      correlationData: address.correlation))
        } catch {
            count("publish_errors")
        }
    }
}
