import MQTT

extension PeerSync {
    /// One of PeerSync's counters. `statistics()` reports each under `name` (snake_case; the agent
    /// exports them as `outpost_mqtt_<name>`), and the refusals and expiries also as a total.
    /// The request ones (`request(_)`) are counted by the request handler (`MQTTDoor`) and
    /// reported here with PeerSync's own.
    public enum Counter: Hashable, Sendable {
        /// One of the request door's (`MQTTRequestCounter`).
        case request(MQTTRequestCounter)
        /// A status or watermark the connection would not take (the door's replies count as
        /// `request(.publishErrors)`, under the same name).
        case publishErrors
        case connects
        case connectFailures
        /// The broker connection dropped without our asking.
        case connectionLosses
        case sessionLosses
        /// The whole cache dropped after a gap in a peer's sequence or watermark.
        case gaps
        case configsReceived
        case messagesIgnored
        case invalidationsApplied
        case invalidationsRejected
        /// Refused by authentication (`Membership.Refusal`): nothing was changed.
        case invalidationsRefused(Membership.Refusal)
        /// Applied, signed by a fleet key (an operator's), also counted as applied.
        case invalidationsOperator
        case invalidationsOwn
        case invalidationsDuplicate
        case invalidationsPublished
        case invalidationErrors
        case watermarksRejected
        case watermarksRefused(Membership.Refusal)
        case statusPublished
        case subscribeErrors
        case logErrors

        /// Where in its life an expired request was dropped.
        public typealias RequestExpiry = MQTT.RequestExpiry

        /// `request(.requestExpired(when))`, the spelling callers had before the door moved out.
        public static func requestExpired(_ when: RequestExpiry) -> Counter { .request(.requestExpired(when)) }

        public var name: String {
            switch self {
            case .request(let c): c.name
            case .publishErrors: "publish_errors"
            case .connects: "connects"
            case .connectFailures: "connect_failures"
            case .connectionLosses: "connection_losses"
            case .sessionLosses: "session_losses"
            case .gaps: "gaps"
            case .configsReceived: "configs_received"
            case .messagesIgnored: "messages_ignored"
            case .invalidationsApplied: "invalidations_applied"
            case .invalidationsRejected: "invalidations_rejected"
            case .invalidationsRefused(let why): "invalidations_refused_\(why.rawValue)"
            case .invalidationsOperator: "invalidations_operator"
            case .invalidationsOwn: "invalidations_own"
            case .invalidationsDuplicate: "invalidations_duplicate"
            case .invalidationsPublished: "invalidations_published"
            case .invalidationErrors: "invalidation_errors"
            case .watermarksRejected: "watermarks_rejected"
            case .watermarksRefused(let why): "watermarks_refused_\(why.rawValue)"
            case .statusPublished: "status_published"
            case .subscribeErrors: "subscribe_errors"
            case .logErrors: "log_errors"
            }
        }

        /// The total a family of counters is also reported under.
        var total: String? {
            switch self {
            case .request(let c): c.total
            case .invalidationsRefused: "invalidations_refused"
            case .watermarksRefused: "watermarks_refused"
            default: nil
            }
        }
    }
}
