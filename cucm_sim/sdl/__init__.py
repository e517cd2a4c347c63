"""The block algebra of the SDL router thread: four strict-priority FIFO queues served a block of time at
a time with numpy, exactly (Lindley's recursion per queue, slots for the lower ones).  No clock, no
simulation: functions of a router state and a block's arrivals, used by the batched engine."""
