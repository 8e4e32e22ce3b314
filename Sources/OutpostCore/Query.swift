/// A request as every front door hands it over: normalised messages, sampling parameters,
/// namespace, cache mode and tags. Nothing below the doors knows which door it came in by.
public struct Query: Sendable, Hashable, Codable {
    public static let defaultNamespace = "default"
    /// Longest namespace or tag, in UTF-8 bytes.
    public static let maxLabelBytes = 256
    public static let maxTags = 32

    public let messages: [ChatMessage]
    public let sampling: SamplingParameters
    public let namespace: String
    public let cacheMode: CacheMode
    public let tags: [String]

    /// Validates and normalises. Tags are de-duplicated and sorted (their order carries no meaning).
    public init(
        messages: [ChatMessage],
        sampling: SamplingParameters = SamplingParameters(),
        namespace: String = Query.defaultNamespace,
        cacheMode: CacheMode = .use,
        tags: [String] = []
    ) throws(QueryError) {
        guard !messages.isEmpty else { throw .emptyMessages() }
        try sampling.validate()
        try Self.validateLabel(namespace, field: "namespace")
        guard tags.count <= Self.maxTags else {
            throw .invalidParameter("cache_tags", "at most \(Self.maxTags) tags, got \(tags.count)")
        }
        for tag in tags { try Self.validateLabel(tag, field: "cache_tags") }
        self.messages = messages
        self.sampling = sampling
        self.namespace = namespace
        self.cacheMode = cacheMode
        self.tags = Array(Set(tags)).sorted()
    }

    /// A namespace or tag: 1 to 256 UTF-8 bytes, no control characters.
    public static func validateLabel(_ label: String, field: String) throws(QueryError) {
        guard !label.isEmpty, label.utf8.count <= maxLabelBytes else {
            throw .invalidParameter(field, "must be 1 to \(maxLabelBytes) bytes long")
        }
        guard !label.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalidParameter(field, "must not contain control characters")
        }
    }

    /// Whether the answer may be cached: only reproducible requests (greedy or a fixed seed).
    public var isCacheable: Bool { cacheMode != .bypass && sampling.isReproducible }
}
