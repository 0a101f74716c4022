"""Agents, one algorithm per module, all with the same contract (see docs/agent_contract.md)."""
