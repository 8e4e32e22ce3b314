/// An invalidation made durable.
public struct InvalidationReceipt: Sendable, Codable, Equatable {
    public var scope: String
    public var hlc: String

    public init(scope: String, hlc: String) {
        self.scope = scope
        self.hlc = hlc
    }

    /// The receipt for a tombstone just made durable.
    public init(_ tombstone: Tombstone) {
        self.init(scope: tombstone.scope.description, hlc: tombstone.hlc.description)
    }
}
