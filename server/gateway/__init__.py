"""The gRPC services: what callers see.

agent_gateway.py   AgentGatewayService: Enroll, Connect, UploadReport, GetDictionary
reports.py         ReportsService: ListReports, GetReport
admin.py           AdminService: tokens, enroll secrets, devices, dictionaries
hub.py             the open Connect streams, to push server messages down them
calls.py           authentication, authorisation and errors -> statuses, for every RPC
"""
