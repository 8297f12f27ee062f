"""Reusable recurrent layers, one public class per module."""
