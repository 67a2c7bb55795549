"""Dataset views (Zeiler & Fergus Fig. 2 and 4): top images per channel over a whole data set, their receptive-field
crops and deconvnet projections, and the same across training snapshots."""
