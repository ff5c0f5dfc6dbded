"""Port probes: USB devices and speeds, USB-C and Power Delivery, serial ports, network links."""
