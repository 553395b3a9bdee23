"""Scale-out: cameras analysed on Ray analysis nodes, events back to the control node (engine.py)."""
