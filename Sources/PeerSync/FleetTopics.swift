import MQTT

/// The topics of one gateway in one fleet (DESIGN.md, "MQTT"), under `outpost/<fleet>` unless
/// another root is configured.
public struct FleetTopics: GatewayTopics, Hashable {
    public let fleet: String
    public let gateway: String
    public let root: String

    public init(fleet: String, gateway: String, root: String? = nil) throws(PeerSyncError) {
        try Self.validateName(fleet, what: "fleet")
        try Self.validateName(gateway, what: "gateway id")
        let root = root ?? "outpost/\(fleet)"
        guard !root.isEmpty, !root.hasPrefix("$"), !root.hasSuffix("/"), !root.contains(where: { $0 == "+" || $0 == "#" }) else {
            throw .invalidConfiguration("the topic root must be a topic name without wildcards, got \"\(root)\"")
        }
        self.fleet = fleet
        self.gateway = gateway
        self.root = root
    }

    /// Fleet names and gateway ids become topic levels and a shared-subscription group name.
    static func validateName(_ name: String, what: String) throws(PeerSyncError) {
        guard !name.isEmpty, name.utf8.count <= 128 else {
            throw .invalidConfiguration("the \(what) must be 1 to 128 bytes, got \"\(name)\"")
        }
        guard !name.unicodeScalars.contains(where: { "/+#$".unicodeScalars.contains($0) || $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalidConfiguration("the \(what) must not contain /, +, #, $ or control characters, got \"\(name)\"")
        }
    }

    /// The fleet request topic (publish here to reach any one gateway of the fleet).
    public var fleetRequests: String { "\(root)/req" }
    /// How gateways subscribe to it: a shared subscription, so each request reaches one of them.
    public var sharedFleetRequests: String { "$share/\(fleet)/\(fleetRequests)" }
    public var gatewayRequests: String { Self.gatewayRequests(root: root, gateway: gateway) }
    public var invalidations: String { "\(root)/cache/invalidate" }
    public var status: String { "\(root)/gw/\(gateway)/status" }
    /// This gateway's retained outbox watermark, and the filter for every gateway's.
    public var watermark: String { "\(root)/cache/watermark/\(gateway)" }
    public var watermarks: String { "\(root)/cache/watermark/+" }

    public func isWatermark(_ topic: String) -> Bool {
        topic.hasPrefix("\(root)/cache/watermark/") && !topic.dropFirst(root.count + 17).contains("/")
    }

    /// Signed fleet configuration (retained): for the whole fleet, and for this gateway only.
    public var fleetConfig: String { "\(root)/config" }
    public var gatewayConfig: String { "\(root)/gw/\(gateway)/config" }

    public static func gatewayRequests(root: String, gateway: String) -> String { "\(root)/gw/\(gateway)/req" }

    /// Whether a received message is a request (on the fleet or this gateway's request topic).
    public func isRequest(_ topic: String) -> Bool { topic == fleetRequests || topic == gatewayRequests }
}
