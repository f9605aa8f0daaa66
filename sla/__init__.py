"""SLA: working-day clocks per case and per unit, yellow and red cards, urging (催办) and escalation (督办)."""
