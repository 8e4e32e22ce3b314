extension PeerSync.Core {
    /// What the request door (`MQTTRequestDoor`) is given of this core: the connection replies go
    /// out on, the counters, the redelivery window's clock and whether it is shutting down. Weak:
    /// the core holds the door.
    var requestDoorHost: MQTTRequestDoor.Host {
        MQTTRequestDoor.Host(
            connection: { [weak self] in self?.connection },
            count: { [weak self] in self?.count($0) },
            connectedClock: { [weak self] in
                self?.state.withLock { $0.link.connectedClock(now: Self.nowNanos()) } ?? 0
            },
            isShuttingDown: { [weak self] in self?.state.withLock { $0.shuttingDown } ?? true })
    }

    /// At most 256 characters of `text`, control characters shown as `?` (it goes into a log line).
    static func printable(_ text: String) -> String {
        var out = String(String.UnicodeScalarView(text.unicodeScalars.prefix(256).map {
            $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? "?" : $0
        }))
        if text.unicodeScalars.count > 256 { out += "…" }
        return out
    }
}
