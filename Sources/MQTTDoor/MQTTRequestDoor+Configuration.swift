import MQTT
import OutpostCore

extension MQTTRequestDoor {
    /// The door's limits and defaults (`outpost run --mqtt …`; the agent sets them).
    public struct Configuration: Sendable {
        /// Requests answered at once.
        public var maxConcurrentRequests = 8
        /// Requests waiting for one of those slots (in arrival order); beyond them a request gets
        /// a "busy" error reply at once.
        public var maxWaitingRequests = 256
        /// Largest request payload accepted; larger ones get an error reply.
        public var maxPayloadBytes = 1 << 20
        /// How long (of time connected to the broker) a request is remembered to recognise a QoS 1
        /// redelivery of it: the same reply address, correlation data or `id`, and payload.
        public var redeliveryWindowSeconds: Double = 30
        /// Sampling defaults for requests that do not set them.
        public var samplingDefaults = SamplingParameters()

        public init() {}

        /// Throws when a limit is out of range.
        public func validate() throws(MQTTError) {
            guard maxConcurrentRequests > 0, maxWaitingRequests >= 0, maxPayloadBytes > 0 else {
                throw .invalidConfiguration("request limits must be positive")
            }
            guard redeliveryWindowSeconds >= 0, redeliveryWindowSeconds <= 3600 else {
                throw .invalidConfiguration("the redelivery window must be 0 to 3600 seconds")
            }
        }
    }

    /// What the connection's owner calls to make the door for its connection (PeerSync's
    /// `Configuration.requests`): a new door for each PeerSync, so one made for a moved topic root
    /// answers under that root, on that connection. Throws now when `configuration` is invalid.
    public static func factory(_ configuration: Configuration) throws(MQTTError)
        -> @Sendable (MQTTRequestHost, any QueryAnswering) -> any MQTTRequestHandler {
        try configuration.validate()
        return { host, service in MQTTRequestDoor(configuration: configuration, service: service, host: host) }
    }
}
