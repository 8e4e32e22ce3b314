import Foundation
import OutpostCore

/// The OpenAI-compatible response bodies: whole responses and server-sent-event chunks.
enum OpenAIResponse {
    static func outpostInfo(_ a: AnsweredQuery) -> [String: Any] {
        var timings: [String: Any] = [
            "queue_ms": a.timings.queueMs, "prompt_ms": a.timings.promptMs,
            "generate_ms": a.timings.generateMs, "total_ms": a.timings.totalMs,
        ]
        if a.timings.generateMs > 0, a.answer.completionTokens > 0 {
            timings["tokens_per_s"] = Double(a.answer.completionTokens) / (a.timings.generateMs / 1000)
        }
        return [
            "cached": a.cached, "stale": a.stale, "cache_key": a.cacheKey?.hex ?? NSNull(),
            "gateway": a.gateway, "kernel": a.kernel, "timings": timings,
        ]
    }

    static func usage(_ a: Answer) -> [String: Any] {
        ["prompt_tokens": a.promptTokens, "completion_tokens": a.completionTokens,
         "total_tokens": a.promptTokens + a.completionTokens]
    }

    static func whole(_ kind: CompletionRequest.Kind, id: String, created: Int, model: String, answered a: AnsweredQuery) -> [String: Any] {
        let choice: [String: Any]
        switch kind {
        case .chat:
            choice = ["index": 0, "message": ["role": "assistant", "content": a.answer.text],
                      "finish_reason": a.answer.finishReason.rawValue]
        case .completion:
            choice = ["index": 0, "text": a.answer.text, "logprobs": NSNull(), "finish_reason": a.answer.finishReason.rawValue]
        }
        return [
            "id": id, "object": kind == .chat ? "chat.completion" : "text_completion", "created": created,
            "model": model, "choices": [choice], "usage": usage(a.answer), "outpost": outpostInfo(a),
        ]
    }

    /// One streamed piece (`delta` for chat, `text` for completions).
    static func chunk(_ kind: CompletionRequest.Kind, id: String, created: Int, model: String, piece: String, first: Bool) -> [String: Any] {
        let choice: [String: Any]
        switch kind {
        case .chat:
            var delta: [String: Any] = ["content": piece]
            if first { delta["role"] = "assistant" }
            choice = ["index": 0, "delta": delta, "finish_reason": NSNull()]
        case .completion:
            choice = ["index": 0, "text": piece, "logprobs": NSNull(), "finish_reason": NSNull()]
        }
        return ["id": id, "object": kind == .chat ? "chat.completion.chunk" : "text_completion", "created": created,
                "model": model, "choices": [choice]]
    }

    /// The last chunk: finish reason, usage and the `outpost` block.
    static func finalChunk(_ kind: CompletionRequest.Kind, id: String, created: Int, model: String, answered a: AnsweredQuery) -> [String: Any] {
        let choice: [String: Any] = kind == .chat
            ? ["index": 0, "delta": [String: Any](), "finish_reason": a.answer.finishReason.rawValue]
            : ["index": 0, "text": "", "logprobs": NSNull(), "finish_reason": a.answer.finishReason.rawValue]
        return ["id": id, "object": kind == .chat ? "chat.completion.chunk" : "text_completion", "created": created,
                "model": model, "choices": [choice], "usage": usage(a.answer), "outpost": outpostInfo(a)]
    }

    static func json(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func sse(_ object: Any) -> Data {
        var d = Data("data: ".utf8)
        d.append(json(object))
        d.append(Data("\n\n".utf8))
        return d
    }

    static let sseDone = Data("data: [DONE]\n\n".utf8)
}
