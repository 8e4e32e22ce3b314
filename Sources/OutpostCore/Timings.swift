/// Where the time of one request went, in milliseconds.
public struct Timings: Sendable, Codable, Equatable {
    public var queueMs: Double
    public var promptMs: Double
    public var generateMs: Double
    public var totalMs: Double

    enum CodingKeys: String, CodingKey {
        case queueMs = "queue_ms"
        case promptMs = "prompt_ms"
        case generateMs = "generate_ms"
        case totalMs = "total_ms"
    }

    public init(queueMs: Double = 0, promptMs: Double = 0, generateMs: Double = 0, totalMs: Double = 0) {
        self.queueMs = queueMs
        self.promptMs = promptMs
        self.generateMs = generateMs
        self.totalMs = totalMs
    }
}
