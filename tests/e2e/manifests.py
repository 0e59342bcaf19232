"""Ordinary Kubernetes YAML used by the end-to-end tests (the same files work on a real cluster)."""

ECHO = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  labels: {app: echo}
spec:
  replicas: 1
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      containers:
      - name: echo
        image: fleetnet/echo
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  labels: {app: client}
spec:
  containers:
  - name: client
    image: fleetnet/client
"""
