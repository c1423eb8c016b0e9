"""Learning from searches: training data export, policy and critic training, expert iteration."""
