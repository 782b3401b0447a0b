"""Memory strategies: how a sample's stored bytes reach its decoder."""
from .base import MemoryManager
from .context import MemoryContext
from .os_cache import OSCacheManager
from .process_cache import ProcessCacheManager

__all__ = ['MemoryManager', 'MemoryContext', 'OSCacheManager', 'ProcessCacheManager']
