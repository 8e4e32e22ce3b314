import FoundationEssentials
import OutpostCore
import Synchronization
import MQTT

extension MQTTRequestDoor {
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
            return "chatcmpl-\(gateway)-\(s.completionCounter)"
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
            publishReply(completion(answered, id: completionID, seq: sequence.withLock { $0 }), to: address)
            count(.replies)
        } catch {
            // Expired: the error is the cancellation's echo, and nobody waits for a reply.
            guard gate?.close() ?? true else { return }
            failed(error, to: address)
        }
    }

    /// The final reply to a request that was answered (message number `seq`).
    private func completion(_ answered: AnsweredQuery, id completionID: String, seq: Int) -> [String: JSONValue] {
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
        return [
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
        ]
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

    /// Publishes an error reply (`{"error": {"type", "message", "param"?, "retry_after"?}, "done": true}`).
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
        guard let c = host.connection() else { return }
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
