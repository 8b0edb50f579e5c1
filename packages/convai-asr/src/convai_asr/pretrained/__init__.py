"""Pretrained weights from other toolkits' formats, read without executing anything."""
