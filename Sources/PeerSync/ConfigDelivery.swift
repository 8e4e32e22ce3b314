/// A message from one of the fleet config topics, handed to `PeerSync.Configuration.onConfig`.
/// PeerSync does not read it: verifying and applying belong to `FleetConfig` (which PeerSync does
/// not import), wired by the agent.
public struct ConfigDelivery: Sendable, Equatable {
    public enum Source: String, Sendable {
        /// `<root>/config`: the whole fleet.
        case fleet
        /// `<root>/gw/<id>/config`: this gateway.
        case gateway
    }

    public let source: Source
    public let topic: String
    /// The message bytes; empty when the message was larger than `maxConfigBytes` (see `byteCount`).
    public let payload: [UInt8]
    /// The size of the message as received.
    public let byteCount: Int
    /// Whether the broker sent it from its retained store (on a (re)subscription) rather than as
    /// a new publication.
    public let retained: Bool

    public init(source: Source, topic: String, payload: [UInt8], byteCount: Int, retained: Bool) {
        self.source = source
        self.topic = topic
        self.payload = payload
        self.byteCount = byteCount
        self.retained = retained
    }

    public var isOversized: Bool { payload.count != byteCount }
}
