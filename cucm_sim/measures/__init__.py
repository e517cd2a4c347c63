"""What a run is measured by: histograms and confidence intervals, the metric catalogue, the timeline's
columns.  Pure numbers; knows the rules' alarm names, nothing of scenarios or engines."""
