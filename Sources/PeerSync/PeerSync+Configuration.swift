import FoundationEssentials
import OutpostCore
import MQTT

extension PeerSync {
    /// How a gateway joins its fleet over MQTT (`outpost run --mqtt URL --fleet F --id ID …`).
    public struct Configuration: Sendable {
        public var broker: BrokerURL
        public var fleet: String
        public var gatewayID: String
        /// Topic root; `outpost/<fleet>` when nil.
        public var topicRoot: String?
        public var protocolVersion: MosquittoClient.ProtocolVersion = .v5
        public var username: String?
        /// A file holding the password (trailing newline ignored), so it is not on the command line.
        public var passwordFile: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var keepaliveSeconds: Int32 = 30
        public var sessionExpirySeconds: UInt32 = 7 * 24 * 3600
        /// Makes the handler of the request topics (`<root>/req`, shared, and `<root>/gw/<id>/req`)
        /// for this PeerSync's connection, topics and service: the agent passes `MQTTDoor`'s
        /// `MQTTRequestDoor.factory`. Called once per PeerSync (a PeerSync made for a moved topic
        /// root gets a door of its own). Without it the request topics are not subscribed.
        public var requests: (@Sendable (MQTTRequestHost, any QueryAnswering) -> any MQTTRequestHandler)?
        /// How often the retained status is refreshed.
        public var statusIntervalSeconds: Double = 30
        public var initialBackoffMillis: UInt64 = 100
        public var maximumBackoffMillis: UInt64 = 30_000
        public var receiveMaximum = 64
        public var sendMaximum = 64
        public var maxQueued = 4096
        /// Receives each message on the two config topics (`<root>/config`, `<root>/gw/<id>/config`),
        /// in arrival order, on the task that reads MQTT events: it must hand the message over and
        /// return at once (verifying and applying happen elsewhere). Without it the config topics
        /// are not subscribed.
        public var onConfig: (@Sendable (ConfigDelivery) -> Void)?
        /// This gateway's member key: what it publishes on the invalidate and watermark topics is
        /// signed with it. Unsigned when nil (peers that require signatures then refuse them).
        public var identity: MemberIdentity?
        /// Whose invalidations and watermarks are accepted. nil: anyone's, signed or not (a fleet
        /// with no trusted fleet key has nothing to check signatures against; the broker's ACL is
        /// then the only guard). Given: only those a member or fleet key it admits has signed.
        public var membership: Membership?
        /// Largest config message handed over whole; a larger one arrives with an empty payload
        /// and its size, to be refused as oversized without holding it.
        public var maxConfigBytes = 256 * 1024

        public init(broker: BrokerURL, fleet: String, gatewayID: String) {
            self.broker = broker
            self.fleet = fleet
            self.gatewayID = gatewayID
        }

        /// The password from `passwordFile` (nil when there is none).
        func password() throws(PeerSyncError) -> String? {
            guard let passwordFile else { return nil }
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw .unreadableFile(passwordFile, "cannot read the MQTT password file")
            }
            guard var text = String(data: data, encoding: .utf8) else {
                throw .unreadableFile(passwordFile, "the MQTT password file is not UTF-8")
            }
            while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
            return text
        }
    }
}
