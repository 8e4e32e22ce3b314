#ifndef OUTPOST_CMOSQUITTO_SHIM_H
#define OUTPOST_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
// mosquitto.h does not include mqtt_protocol.h, which holds the MQTT v5 property identifiers,
// reason codes and protocol version constants the client needs.
#include <mqtt_protocol.h>

#endif
