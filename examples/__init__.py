"""Runnable product apps that use feedbackguard."""
