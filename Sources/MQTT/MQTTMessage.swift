/// A message received from the broker (or to publish), with the MQTT v5 request/response
/// properties the request topics use.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int32
    public var retain: Bool
    /// v5 Response Topic property.
    public var responseTopic: String?
    /// v5 Correlation Data property.
    public var correlationData: [UInt8]?
    /// v5 Message Expiry Interval, in seconds: on a received message, what is left of it (the
    /// broker counts down the time the message waited); on a published one, how long it may wait.
    public var messageExpiryInterval: UInt32?
    /// A received Response Topic that was not UTF-8 (then `responseTopic` is nil): the requester
    /// named a reply address that cannot be used, which is not the same as naming none.
    public var responseTopicMalformed = false

    public init(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = false,
                responseTopic: String? = nil, correlationData: [UInt8]? = nil, messageExpiryInterval: UInt32? = nil) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.responseTopic = responseTopic
        self.correlationData = correlationData
        self.messageExpiryInterval = messageExpiryInterval
    }
}

/// What the client's network thread reports.
public enum MQTTEvent: Sendable, Equatable {
    /// CONNACK received: `reasonCode` 0 is success; `sessionPresent` from the CONNACK flags.
    case connected(reasonCode: Int32, sessionPresent: Bool)
    /// The connection ended; `reasonCode` 0 means we asked for it.
    case disconnected(reasonCode: Int32)
    case message(MQTTMessage)
    /// The broker acknowledged a QoS ≥ 1 publish (PUBACK), or a QoS 0 publish left.
    case published(messageID: Int32, reasonCode: Int32)
    case subscribed(messageID: Int32, grantedQoS: [Int32])
    /// Follows `.connected` when the gateway had a session and the broker no longer holds it
    /// (messages sent while it was away are gone). Produced by `MQTTConnection`.
    case sessionLost
    /// A connect attempt failed before any CONNACK; the next one is due in `retryInMillis`.
    /// Produced by `MQTTConnection`.
    case connectFailed(detail: String, retryInMillis: UInt64)
}
