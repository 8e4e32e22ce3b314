import FoundationEssentials
import OutpostCore
import MQTT

/// An operator's invalidation sent to a whole fleet without going through a gateway
/// (`outpost cache invalidate --fleet-key`): signed with a fleet key that the gateways trust,
/// published once at QoS 1 on `<root>/cache/invalidate`, and confirmed by the broker's PUBACK.
/// Every gateway verifies the signature against its trusted fleet keys before applying it.
public enum OperatorInvalidation {
    public struct Connection: Sendable {
        public var broker: BrokerURL
        public var username: String?
        public var password: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?

        public init(broker: BrokerURL) {
            self.broker = broker
        }
    }

    /// The signed message for `scope`, stamped now (wall-clock milliseconds, logical 0).
    public static func message(scope: InvalidationScope, origin: String, fleet: String, keyID: String,
                               key: Ed25519.PrivateKey, nowMillis: UInt64) throws -> InvalidationMessage {
        try FleetTopics.validateName(origin, what: "origin")
        let tombstone = Tombstone(scope: scope, hlc: HLCTimestamp(wallMillis: nowMillis, logical: 0))
        return try InvalidationMessage(origin: origin, tombstone: tombstone).signed(byFleetKey: key, keyID: keyID, fleet: fleet)
    }

    /// Publishes `message` on `topics.invalidations` and waits (up to `timeout`) for the broker's
    /// acknowledgement. Throws if the broker refuses the connection or the publication.
    public static func publish(_ message: InvalidationMessage, topics: FleetTopics, over connection: Connection,
                               timeout: Duration = .seconds(10)) async throws {
        let client = try MosquittoClient(clientID: "outpost-operator-\(UInt32.random(in: 0 ... .max))", cleanStart: true)
        if let user = connection.username { try client.setCredentials(username: user, password: connection.password) }
        if connection.broker.tls || connection.caFile != nil {
            guard let ca = connection.caFile else { throw PeerSyncError.invalidConfiguration("mqtts:// needs a CA file") }
            try client.setTLS(caFile: ca, certFile: connection.certFile, keyFile: connection.keyFile)
        }
        try client.startLoop()
        defer {
            try? client.disconnect()
            client.stopLoop()
        }
        try client.connect(host: connection.broker.host, port: connection.broker.port)
        let events = client.events
        let outcome = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                var mid: Int32?
                for await event in events {
                    switch event {
                    case .connected(0, _):
                        mid = try client.publish(MQTTMessage(topic: topics.invalidations, payload: message.encoded(), qos: 1))
                    case .connected(let rc, _):
                        return "the broker refused the connection (reason code \(rc))"
                    case .published(let m, let rc) where m == mid:
                        return rc == 0 || rc == 16 ? nil : "the broker refused the publication (reason code \(rc))"
                    case .disconnected(let rc):
                        return "the broker closed the connection (reason code \(rc))"
                    default:
                        break
                    }
                }
                return "the connection ended"
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return "no acknowledgement from \(connection.broker) within \(timeout)"
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let outcome { throw PeerSyncError.invalidConfiguration(outcome) }
    }
}
