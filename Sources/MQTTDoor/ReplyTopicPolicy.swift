import MQTT

/// Where a gateway may publish a reply: the v5 Response Topic or the v3.1.1 `reply_to` a request
/// names is the requester's word, so it is checked before anything is published there.
///
/// Refused:
/// - anything in the fleet's own topic root (`<root>` and `<root>/…`): the root is the fleet's
///   reserved namespace (requests, invalidations, watermarks, configs, statuses, and whatever is
///   added there later), so no reply goes there, whatever its shape;
/// - topics shaped like another fleet's control topics (`…/config`, `…/gw/<id>/config`,
///   `…/gw/<id>/status`, `…/gw/<id>/req`, `…/req`, `…/cache/invalidate`, `…/cache/watermark/<id>`),
///   so that fleets sharing a broker, and the root this gateway used before a move, are not written
///   to either;
/// - topics the broker treats specially (`$SYS/…`, `$share/…`), wildcards (`+`, `#`: not a topic
///   name), empty, longer than `maxBytes`, or with control characters or a malformed encoding.
///
/// Replies are not confined to one prefix: the README's clients reply on `replies/…`, but the
/// protocol lets a requester name any topic, and the broker's ACL (board/mosquitto) is where a
/// site confines them to a prefix if it wants to.
public struct ReplyTopicPolicy: Sendable, Hashable {
    /// Why a reply topic was refused (a stable word: counters, logs; shared with PeerSync, which
    /// reports the counters and relays the notices).
    public typealias Refusal = ReplyTopicRefusal

    /// Longest reply topic accepted (an MQTT topic is at most 65535 bytes).
    public static let maxBytes = 4096

    public let root: String

    public init(root: String) {
        self.root = root
    }

    public init(topics: some GatewayTopics) {
        self.init(root: topics.root)
    }

    /// nil when a reply may go to `topic`, else why not.
    public func check(_ topic: String) -> Refusal? {
        if topic.isEmpty { return .empty }
        if topic.utf8.count > Self.maxBytes { return .oversized }
        if topic.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            return .malformed
        }
        if topic.hasPrefix("$") { return .system }
        if topic.contains(where: { $0 == "+" || $0 == "#" }) { return .wildcard }
        if topic == root || topic.hasPrefix(root + "/") { return .fleetTopic }
        if Self.isControlShaped(topic) { return .controlTopic }
        return nil
    }

    /// Whether the last levels of `topic` are those of a fleet control topic (see PeerSync's `FleetTopics`).
    static func isControlShaped(_ topic: String) -> Bool {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        guard levels.count >= 2, let last = levels.last else { return false }
        if last == "config" || last == "req" { return true }  // <r>/config, <r>/req, <r>/gw/<id>/config|req
        let n = levels.count
        if levels[n - 2] == "cache" && last == "invalidate" { return true }
        if n >= 3 {
            if levels[n - 3] == "cache" && levels[n - 2] == "watermark" { return true }
            if levels[n - 3] == "gw" && last == "status" { return true }
        }
        return false
    }
}
