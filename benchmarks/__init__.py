"""Offline evaluation of TechMatch: quality on BEIR-layout data sets, speed and scale."""
