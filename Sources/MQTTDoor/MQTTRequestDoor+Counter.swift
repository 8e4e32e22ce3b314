import MQTT

extension MQTTRequestDoor {
    /// The door's counters (`MQTTRequestCounter`, in `MQTT` so that PeerSync reports them by the same names).
    public typealias Counter = MQTTRequestCounter
}
