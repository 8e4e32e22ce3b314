import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore

/// The OpenAI-compatible response bodies: whole responses and server-sent-event chunks, built as
/// `JSONValue`s and written by its direct encoder (these are on every request's path).
enum OpenAIResponse {
    static func outpostInfo(_ a: AnsweredQuery) -> JSONValue {
        var timings: [String: JSONValue] = [
            "queue_ms": .number(a.timings.queueMs), "prompt_ms": .number(a.timings.promptMs),
            "generate_ms": .number(a.timings.generateMs), "total_ms": .number(a.timings.totalMs),
        ]
        if a.timings.generateMs > 0, a.answer.completionTokens > 0 {
            timings["tokens_per_s"] = .number(Double(a.answer.completionTokens) / (a.timings.generateMs / 1000))
        }
        return .object([
            "cached": .bool(a.cached), "stale": .bool(a.stale), "cache_key": a.cacheKey.map { .string($0.hex) } ?? .null,
            "gateway": .string(a.gateway), "kernel": .string(a.kernel), "timings": .object(timings),
        ])
    }

    static func usage(_ a: Answer) -> JSONValue {
        .object(["prompt_tokens": .int(a.promptTokens), "completion_tokens": .int(a.completionTokens),
                 "total_tokens": .int(a.promptTokens + a.completionTokens)])
    }

    static func whole(_ kind: CompletionRequest.Kind, id: String, created: Int, model: String, answered a: AnsweredQuery) -> JSONValue {
        let finish = JSONValue.string(a.answer.finishReason.rawValue)
        let choice: JSONValue = switch kind {
        case .chat:
            .object(["index": .int(0), "message": .object(["role": .string("assistant"), "content": .string(a.answer.text)]),
                     "finish_reason": finish])
        case .completion:
            .object(["index": .int(0), "text": .string(a.answer.text), "logprobs": .null, "finish_reason": finish])
        }
        return .object([
            "id": .string(id), "object": .string(kind == .chat ? "chat.completion" : "text_completion"),
            "created": .int(created), "model": .string(model), "choices": .array([choice]),
            "usage": usage(a.answer), "outpost": outpostInfo(a),
        ])
    }

    /// One streamed piece (`delta` for chat, `text` for completions).
    static func chunk(_ kind: CompletionRequest.Kind, id: String, created: Int, model: String, piece: String, first: Bool) -> JSONValue {
        let choice: JSONValue
        switch kind {
        case .chat:
            var delta: [String: JSONValue] = ["content": .string(piece)]
            if first { delta["role"] = .string("assistant") }
            choice = .object(["index": .int(0), "delta": .object(delta), "finish_reason": .null])
        case .completion:
            choice = .object(["index": .int(0), "text": .string(piece), "logprobs": .null, "finish_reason": .null])
        }
        return .object(["id": .string(id), "object": .string(kind == .chat ? "chat.completion.chunk" : "text_completion"),
                        "created": .int(created), "model": .string(model), "choices": .array([choice])])
    }

    /// The last chunk: finish reason, usage and the `outpost` block.
    static func finalChunk(_ kind: CompletionRequest.Kind, id: String, created: Int, model: String, answered a: AnsweredQuery) -> JSONValue {
        let finish = JSONValue.string(a.answer.finishReason.rawValue)
        let choice: JSONValue = kind == .chat
            ? .object(["index": .int(0), "delta": .object([:]), "finish_reason": finish])
            : .object(["index": .int(0), "text": .string(""), "logprobs": .null, "finish_reason": finish])
        return .object(["id": .string(id), "object": .string(kind == .chat ? "chat.completion.chunk" : "text_completion"),
                        "created": .int(created), "model": .string(model), "choices": .array([choice]),
                        "usage": usage(a.answer), "outpost": outpostInfo(a)])
    }

    static func json(_ value: JSONValue) -> [UInt8] { value.encoded() }

    static func sse(_ value: JSONValue) -> Data {
        var bytes = Array("data: ".utf8)
        value.write(into: &bytes)
        bytes.append(contentsOf: "\n\n".utf8)
        return Data(bytes)
    }

    static let sseDone = Data("data: [DONE]\n\n".utf8)
}
