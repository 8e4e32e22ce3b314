/// A generated answer as the cache stores it and the doors return it.
public struct Answer: Sendable, Hashable, Codable {
    public enum FinishReason: String, Sendable, Hashable, Codable {
        case stop
        case length
    }

    public let text: String
    public let finishReason: FinishReason
    public let promptTokens: Int
    public let completionTokens: Int

    public init(text: String, finishReason: FinishReason = .stop, promptTokens: Int = 0, completionTokens: Int = 0) {
        self.text = text
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }
}
