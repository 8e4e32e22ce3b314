extension PeerSync {
    /// One of PeerSync's counters. `statistics()` reports each under `name` (snake_case; the agent
    /// exports them as `outpost_mqtt_<name>`), and the refusals and expiries also as a total.
    public enum Counter: Hashable, Sendable {
        case requests
        case replies
        /// Refused before answering (malformed, oversized, invalid fields); an error reply went out
        /// if there was somewhere to reply.
        case requestsRefused
        /// No acceptable reply address: nothing was answered.
        case requestsUnanswerable
        /// A QoS 1 redelivery, answered once already.
        case requestsDuplicate
        case requestsBusy
        case requestsFailed
        /// The request's reply topic was refused (also counted as unanswerable).
        case replyTopicRefused(ReplyTopicPolicy.Refusal)
        /// The request's v5 Message Expiry passed before its answer went out: not answered.
        case requestExpired(RequestExpiry)
        case errorReplies
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
        public enum RequestExpiry: String, Hashable, Sendable, CaseIterable {
            /// On arrival or when its turn came (nothing was generated).
            case beforeStart = "before_start"
            /// While it was being answered (the answer was cancelled).
            case whileAnswering = "while_answering"
        }

        public var name: String {
            switch self {
            case .requests: "requests"
            case .replies: "replies"
            case .requestsRefused: "requests_refused"
            case .requestsUnanswerable: "requests_unanswerable"
            case .requestsDuplicate: "requests_duplicate"
            case .requestsBusy: "requests_busy"
            case .requestsFailed: "requests_failed"
            case .replyTopicRefused(let why): "reply_topics_refused_\(why.rawValue)"
            case .requestExpired(let when): "requests_expired_\(when.rawValue)"
            case .errorReplies: "error_replies"
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
            case .replyTopicRefused: "reply_topics_refused"
            case .requestExpired: "requests_expired"
            case .invalidationsRefused: "invalidations_refused"
            case .watermarksRefused: "watermarks_refused"
            default: nil
            }
        }
    }
}
