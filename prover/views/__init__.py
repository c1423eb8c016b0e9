"""Looking at searches: tree pages and pictures, run pages, reports and plots."""
