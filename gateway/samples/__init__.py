"""The sample library: detection tasks, samples, labels, splits, import and export."""
