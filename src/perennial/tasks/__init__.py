"""Customer-service tasks (the seeds' 金牌客服电话回访): teams of agents, round-robin
assignment, SLA and breach alerts, outcomes that flow back as events."""
