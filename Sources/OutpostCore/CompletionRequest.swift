import FoundationEssentials

/// A parsed and validated chat or completion request: the `/v1/chat/completions` (or
/// `/v1/completions`) JSON that both front doors accept. Unknown fields are ignored, as OpenAI
/// clients send many optional ones; known fields of the wrong type are refused by name.
public struct CompletionRequest: Sendable {
    public enum Kind: Sendable { case chat, completion }

    public let kind: Kind
    public let query: Query
    public let stream: Bool
    public let model: String?
    /// The object itself, for doors that read extra fields (MQTT's `reply_to` and `id`).
    public let fields: [String: JSONValue]

    /// The role a raw completion prompt is carried under: chat and raw requests never share a
    /// cache key, and the agent knows not to apply the chat template.
    public static let rawPromptRole = "raw_prompt"
    public static let maxMessages = 1024
    static let chatRoles: Set<String> = ["system", "user", "assistant", "tool"]

    /// The raw prompt of a completion request, or nil for a chat request.
    public var rawPrompt: String? {
        kind == .completion ? query.messages.first?.content : nil
    }

    public static func parse(_ body: Data, kind: Kind, defaults: SamplingParameters) throws(QueryError) -> CompletionRequest {
        guard case .object(let object) = try JSONValue.parse(body) else {
            throw QueryError.malformed("the body must be a JSON object")
        }
        return try parse(object: object, kind: kind, defaults: defaults)
    }

    public static func parse(object: [String: JSONValue], kind: Kind, defaults: SamplingParameters) throws(QueryError) -> CompletionRequest {
        let f = Fields(object: object)
        let messages: [ChatMessage]
        switch kind {
        case .chat:
            guard let raw = try f.array("messages") else { throw .invalidParameter("messages", "is required") }
            guard !raw.isEmpty else { throw .emptyMessages() }
            guard raw.count <= maxMessages else { throw .invalidParameter("messages", "holds more than \(maxMessages) messages") }
            var list: [ChatMessage] = []
            for (i, m) in raw.enumerated() { list.append(try message(m, index: i)) }
            messages = list
        case .completion:
            let prompt: String
            switch object["prompt"] {
            case .string(let p): prompt = p
            case .array(let a) where a.count == 1:
                guard case .string(let p) = a[0] else { throw .invalidParameter("prompt", "must be a string") }
                prompt = p
            case nil, .null: throw .invalidParameter("prompt", "is required")
            default: throw .invalidParameter("prompt", "must be a string (or a list of one string)")
            }
            guard !prompt.isEmpty else { throw .invalidParameter("prompt", "must not be empty") }
            messages = [ChatMessage(role: rawPromptRole, content: prompt)]
        }

        var sampling = defaults
        if let v = try f.int("max_tokens") {
            sampling.maxTokens = v
        } else if let v = try f.int("max_completion_tokens") {
            sampling.maxTokens = v
        }
        if let v = try f.double("temperature") { sampling.temperature = v }
        if let v = try f.double("top_p") { sampling.topP = v }
        if let v = try f.int("top_k") { sampling.topK = v }
        if let v = try f.double("repeat_penalty") { sampling.repeatPenalty = v }
        if let v = try f.int("seed") {
            guard v >= 0 else { throw .invalidParameter("seed", "must be >= 0, got \(v)") }
            sampling.seed = UInt64(v)
        }
        if let n = try f.int("n"), n != 1 { throw .invalidParameter("n", "must be 1 (one choice per request)") }
        if let stop = object["stop"], stop != .null {
            throw .invalidParameter("stop", "is not supported: generation ends at the model's end-of-turn token or max_tokens")
        }
        let cacheMode: CacheMode
        if let c = try f.string("cache") {
            guard let m = CacheMode(rawValue: c) else { throw .invalidParameter("cache", "must be one of use, refresh, bypass") }
            cacheMode = m
        } else {
            cacheMode = .use
        }
        let query = try Query(messages: messages, sampling: sampling,
                              namespace: try f.string("namespace") ?? Query.defaultNamespace,
                              cacheMode: cacheMode, tags: try f.stringArray("cache_tags") ?? [])
        return CompletionRequest(kind: kind, query: query, stream: try f.bool("stream") ?? false,
                                 model: try f.string("model"), fields: object)
    }

    private static func message(_ value: JSONValue, index: Int) throws(QueryError) -> ChatMessage {
        let name = "messages[\(index)]"
        guard case .object(let m) = value else { throw .invalidParameter(name, "must be an object") }
        guard case .string(let role)? = m["role"] else { throw .invalidParameter("\(name).role", "must be a string") }
        guard chatRoles.contains(role) else { throw .invalidParameter("\(name).role", "must be one of system, user, assistant, tool") }
        switch m["content"] {
        case .string(let s):
            return ChatMessage(role: role, content: s)
        case .array(let parts):
            var text = ""
            for part in parts {
                guard case .object(let p) = part, p["type"] == .string("text"), case .string(let t)? = p["text"] else {
                    throw .invalidParameter("\(name).content", "parts must be {\"type\":\"text\",\"text\":…}")
                }
                text += t
            }
            return ChatMessage(role: role, content: text)
        default:
            throw .invalidParameter("\(name).content", "must be a string")
        }
    }

    /// Typed access to optional fields; `null` counts as absent.
    public struct Fields: Sendable {
        public let object: [String: JSONValue]
        public init(object: [String: JSONValue]) { self.object = object }

        func value(_ key: String) -> JSONValue? {
            guard let v = object[key], v != .null else { return nil }
            return v
        }

        public func string(_ key: String) throws(QueryError) -> String? {
            guard let v = value(key) else { return nil }
            guard case .string(let s) = v else { throw .invalidParameter(key, "must be a string") }
            return s
        }

        public func bool(_ key: String) throws(QueryError) -> Bool? {
            guard let v = value(key) else { return nil }
            guard case .bool(let b) = v else { throw .invalidParameter(key, "must be true or false") }
            return b
        }

        public func double(_ key: String) throws(QueryError) -> Double? {
            guard let v = value(key) else { return nil }
            guard case .number(let d) = v else { throw .invalidParameter(key, "must be a number") }
            guard d.isFinite else { throw .invalidParameter(key, "must be a finite number") }
            return d
        }

        public func int(_ key: String) throws(QueryError) -> Int? {
            guard let d = try double(key) else { return nil }
            guard d == d.rounded(), abs(d) <= 9_007_199_254_740_992 else { throw .invalidParameter(key, "must be an integer") }
            return Int(d)
        }

        public func array(_ key: String) throws(QueryError) -> [JSONValue]? {
            guard let v = value(key) else { return nil }
            guard case .array(let a) = v else { throw .invalidParameter(key, "must be an array") }
            return a
        }

        public func stringArray(_ key: String) throws(QueryError) -> [String]? {
            guard let a = try array(key) else { return nil }
            var out: [String] = []
            for item in a {
                guard case .string(let s) = item else { throw .invalidParameter(key, "must be a list of strings") }
                out.append(s)
            }
            return out
        }
    }
}
