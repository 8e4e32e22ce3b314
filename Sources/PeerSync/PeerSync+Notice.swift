import MQTT
import OutpostCore

extension PeerSync {
    /// Something an operator should see as one log line (`PeerSync.notices`; the agent logs them).
    /// Counts ride along so that one line says how often, not just that it happened.
    public enum Notice: Sendable, Equatable {
        /// The broker connection dropped without our asking (`losses` so far; `unacknowledged`
        /// QoS 1 publications of ours libmosquitto will resend after the reconnect).
        case connectionLost(reasonCode: Int32, losses: Int, unacknowledged: Int)
        /// Connected again after a loss, `downMillis` later, after `failedAttempts` failed attempts.
        case reconnected(downMillis: UInt64, failedAttempts: Int, sessionPresent: Bool, connects: Int)
        /// Every SUBSCRIBE of a (re)connect acknowledged: `topics` granted, `refused` refused by
        /// the broker (ACL); `reconnect` false for the first connect.
        case subscribed(topics: Int, refused: Int, reconnect: Bool)
        /// The broker no longer holds this gateway's session (CONNACK without a session after one
        /// was held): whatever was sent meanwhile is gone.
        case sessionLost(losses: Int)
        /// The whole answer cache was dropped locally: `entries` stored before (nil when the cache
        /// cannot say), `drops` such drops so far.
        case cacheDropped(reason: CacheDropReason, entries: Int?, drops: Int)
        /// A request named a reply topic the policy refuses; `suppressed` such notices were left
        /// out since the last one logged (rate limit). Relayed from the request handler.
        case replyTopicRefused(ReplyTopicRefusal, topic: String, requestTopic: String, suppressed: Int)
        /// A request's Message Expiry passed before it was answered; it was dropped (and its
        /// generation cancelled when it had started). Relayed from the request handler.
        case requestExpired(Counter.RequestExpiry, overdueMillis: Int64, suppressed: Int)
        /// An invalidation or watermark (`watermark`) failed authentication and changed nothing;
        /// `refused` such messages so far.
        case messageRefused(Membership.Refusal, origin: String, watermark: Bool, refused: Int, suppressed: Int)
    }

    /// Why the cache was dropped.
    public enum CacheDropReason: Sendable, Equatable {
        /// The broker lost the session: invalidations sent while away may be gone.
        case sessionLost
        /// A peer's invalidation sequence skipped some (`origin` is the peer).
        case sequenceGap(origin: String)
        /// A peer's retained watermark is ahead of what reached this gateway.
        case watermarkAhead(origin: String)

        public var word: String {
            switch self {
            case .sessionLost: "session_lost"
            case .sequenceGap: "sequence_gap"
            case .watermarkAhead: "watermark_ahead"
            }
        }
    }
}

/// An `InvalidationTarget` that can say how many entries it holds, so that a cache dropped for
/// want of proof is logged with what it cost.
public protocol CountingInvalidationTarget: InvalidationTarget {
    /// Entries stored now (nil if unknown).
    func entryCount() -> Int?
}
