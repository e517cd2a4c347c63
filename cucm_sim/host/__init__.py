"""Windows hosts and the links between them: processors with DPC queues, NIC receive rings, heartbeat sessions."""
