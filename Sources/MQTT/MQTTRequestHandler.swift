/// What answers the request messages arriving on a connection someone else owns. PeerSync owns
/// the gateway's one MQTT connection: it subscribes to the request topics, makes its handler
/// (`MQTTDoor`'s `MQTTRequestDoor`, through the factory the agent puts in its configuration) with
/// an `MQTTRequestHost`, hands it each request message, relays its notices and reports its
/// counters with its own. The two modules never import each other; this is what they share.
public protocol MQTTRequestHandler: Sendable {
    /// Takes one request message, on the task reading the connection's events: must return at
    /// once, answering in a task added to `group` (cancelled when the connection's owner stops).
    func accept(_ message: MQTTMessage, in group: inout DiscardingTaskGroup)

    /// Counters by name (snake_case, exported as `outpost_mqtt_<name>`), with the totals of their
    /// families; counters still at zero are left out.
    func statistics() -> [String: Int]
}

/// The topics a request handler answers under: a gateway of a fleet, under a topic root.
public protocol GatewayTopics: Sendable {
    /// The fleet's topic root (`outpost/<fleet>` unless configured): its reserved namespace.
    var root: String { get }
    /// This gateway's id (a topic level).
    var gateway: String { get }
}

/// What the owner of the connection gives its request handler.
public struct MQTTRequestHost: Sendable {
    public var topics: any GatewayTopics
    /// The connection replies go out on (nil: none yet, nothing is published).
    public var connection: @Sendable () -> MQTTConnection?
    /// Nanoseconds spent connected to the broker: a clock that stands still while the broker is
    /// away (redeliveries come right after a reconnect).
    public var connectedClock: @Sendable () -> UInt64
    /// Whether the owner is shutting down: no more requests are admitted.
    public var isShuttingDown: @Sendable () -> Bool
    /// Where the handler's notices go (the owner logs them with its own).
    public var notice: @Sendable (MQTTRequestNotice) -> Void

    public init(topics: any GatewayTopics, connection: @escaping @Sendable () -> MQTTConnection?,
                connectedClock: @escaping @Sendable () -> UInt64, isShuttingDown: @escaping @Sendable () -> Bool,
                notice: @escaping @Sendable (MQTTRequestNotice) -> Void) {
        self.topics = topics
        self.connection = connection
        self.connectedClock = connectedClock
        self.isShuttingDown = isShuttingDown
        self.notice = notice
    }
}
